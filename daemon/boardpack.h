/* boardpack.h: the scheduled board pack (issue "Board reporting" item 5):
 * each entry of board_packs is, on its day of every month at its local
 * time, the board report (report.h) of the previous calendar month for its
 * scope, queued in the one outbox as a job for its recipient and delivered
 * like any other (email with the HTML and the CSV attached, a webhook or a
 * YJN1 NOTE with the JSON), audited as a disclosure of aggregate data.
 *
 * The report is built and rendered when it falls due, in a report helper
 * process (reportjob.h: never on the loop), and kept in the job,
 * so that a retry sends the same figures. A daemon stopped over the send
 * time sends the latest pack due on start; none is sent twice (the month
 * last queued per entry is kept in the store, db/positions).
 *
 * Ownership: borrows the core.
 */
#ifndef YJ_BOARDPACK_H
#define YJ_BOARDPACK_H

struct yj_core;
struct yj_boardpack;

int yj_boardpack_start(struct yj_core *core, struct yj_boardpack **out);
void yj_boardpack_stop(struct yj_boardpack **bp);

/* Start building every pack due now (a moved test clock asks at once), each
 * in a report helper (reportjob.h); each is queued when its helper is done.
 * Returns how many were started, or <0. */
int yj_boardpack_run_now(struct yj_boardpack *bp);

#endif
