/* control.h: the operator socket yjlinkctl talks to (interfaces.md §6).
 *
 * Protocol (internal between yjlinkctl and yjlinkd, documented in
 * docs/control.md): a DEALER sends `YJC1`, a JSON object
 * {"cmd": "...", "args": {...}}; the daemon answers `YJC1`, an exit code
 * ("0" done, "1" refused or failed, "2" usage), a JSON object.
 * The ipc socket file is made mode 0660; the caller's uid is read from the
 * socket's peer credentials and recorded with every command that shows
 * personal data.
 *
 * Every command goes through the module that owns what it touches
 * (db/ for stored entities, route.h for replay and hold release, outbox.h
 * for dead letters, digest.h for digests): none builds a key here.
 */
#ifndef YJ_CONTROL_H
#define YJ_CONTROL_H

#include "core.h"

struct yj_control;

/* Bind control.endpoint and join the loop. The control server borrows core. */
int yj_control_start(struct yj_core *core, struct yj_control **out);
void yj_control_stop(struct yj_control **ctl);

#endif
