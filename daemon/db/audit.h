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

/* The chain's head: the newest record's number and hash, as audit.head
 * holds them (after retention erased every record, still the last one
 * made). 0 and a zero hash when no record was ever made. Returns 0 or a
 * store error (YJ_ESTORE for an audit.head of the wrong size). */
int yj_audit_head(struct yj_txn *txn, uint64_t *number, uint8_t hash[32]);

/* What yj_audit_verify_anchor() found. */
enum yj_audit_anchor_result {
	YJ_AUDIT_ANCHOR_PROVEN = 0, /* the chain is intact and holds record number with that hash */
	YJ_AUDIT_ANCHOR_BROKEN,     /* the chain itself does not verify: bad is its first bad record */
	YJ_AUDIT_ANCHOR_DIFFERENT,  /* record number is there with another hash (found): rewritten */
	YJ_AUDIT_ANCHOR_MISSING,    /* the log ends before number (at head): cut off or rewritten */
	YJ_AUDIT_ANCHOR_ERASED,     /* number is before the base retention left: cannot be proven */
};

struct yj_audit_anchor {
	enum yj_audit_anchor_result result;
	uint64_t checked;           /* records the walk verified */
	uint64_t bad;               /* BROKEN: the first record that does not fit */
	uint64_t base;              /* number of the last record retention erased (0 none) */
	uint64_t head;              /* the newest record's number (audit.head) */
	uint8_t found[32];          /* DIFFERENT: record number's hash in the log */
};

/* Prove that the log still holds the anchor (number, hash), a head taken
 * from an earlier digest: the whole chain verifies as yj_audit_verify()
 * says, and record number is in it with exactly that hash (number equal to
 * the base: the base's hash, which the chain's first record follows). A
 * rewrite that re-hashed the chain and audit.head passes yj_audit_verify()
 * but not this. Returns 0 when proven, YJ_ESTORE when not (out->result says
 * why), or another store error. */
int yj_audit_verify_anchor(struct yj_txn *txn, uint64_t number, const uint8_t hash[32], struct yj_audit_anchor *out);

/* A hash as 64 lowercase hex digits and a NUL. */
void yj_audit_hex(const uint8_t hash[32], char out[65]);

/* "SEQ:HASH" (a decimal number, ':', 64 hex digits of either case) into
 * number and hash. Returns 0 or YJ_EINVAL. */
int yj_audit_parse_anchor(const char *s, uint64_t *number, uint8_t hash[32]);

typedef int (*yj_audit_fn)(void *arg, const Yjlink__V1__AuditRecord *rec);
/* Every record (borrowed during the call); reverse = newest first. */
int yj_audit_each(struct yj_txn *txn, int reverse, yj_audit_fn fn, void *arg);

#endif
