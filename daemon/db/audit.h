/* db/audit.h: the disclosure log (routing.md "Audit", DPA 2018 s.62). Only
 * db/audit.c reads or writes YJ_DB_AUDIT: number (be64) -> packed
 * yjlink.v1.AuditRecord.
 *
 * Append-only and hash-chained: each record carries the hash of the one
 * before it, and its own hash over (prev_hash || the record packed with an
 * empty hash field), BLAKE2b-256. yj_audit_verify() recomputes the chain and
 * finds any changed, removed or reordered record (after the base that
 * retention leaves: the last record it erased). Records hold metadata
 * only (who, when, to whom, under which rule and legal basis, which event
 * numbers and which field names), never a copy of the data.
 */
#ifndef YJ_DB_AUDIT_H
#define YJ_DB_AUDIT_H

#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

/* Append rec inside txn: its number, prev_hash and hash are computed here.
 * rec is modified: number is set and stays set; prev_hash and hash point
 * into this call's own storage while it runs and are cleared again (NULL,
 * has_* 0) before it returns, whatever it returns. Returns 0 or a store
 * error. */
int yj_audit_append(struct yj_txn *txn, Yjlink__V1__AuditRecord *rec);

/* Walk the whole chain. Returns 0 when intact (*checked = records seen), or
 * YJ_ESTORE with *bad = the first record that does not fit. */
int yj_audit_verify(struct yj_txn *txn, uint64_t *checked, uint64_t *bad);

/* Retention (retention.audit_days): erase the oldest records made before
 * before_us, at most max, keeping the number and hash of the last one
 * erased as the chain's base, from which yj_audit_verify() then starts.
 * *erased, *first and *last say what went; *more that more is due. The
 * caller appends the record of this erasure. */
int yj_audit_erase_before(struct yj_txn *txn, int64_t before_us, size_t max, uint64_t *erased, uint64_t *first,
			  uint64_t *last, int *more);

typedef int (*yj_audit_fn)(void *arg, const Yjlink__V1__AuditRecord *rec);
/* Every record (borrowed during the call); reverse = newest first. */
int yj_audit_each(struct yj_txn *txn, int reverse, yj_audit_fn fn, void *arg);

#endif
