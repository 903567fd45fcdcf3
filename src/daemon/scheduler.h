/*
 * scheduler.h - picomaild's scheduler (private to src/daemon/): one
 * thread that turns due scheduled events (`schedule ... at` / `repeat`,
 * store.h schedules) into inbox entries for the dispatcher; scheduler.c
 * says how.
 */
#ifndef PICOMAIL_DAEMON_SCHEDULER_H
#define PICOMAIL_DAEMON_SCHEDULER_H

#include <pthread.h>
#include <stddef.h>

#include "daemon.h"

struct scheduler;

/* scheduler_start - the thread, with its own store connection to DATABASE
 * through GATE (borrowed; outlives the scheduler); DISPATCH (borrowed,
 * may be NULL) is woken after each commit that added inbox entries.
 * NULL with a message in ERR. */
struct scheduler *scheduler_start(const char *database, pthread_mutex_t *gate,
                                  struct dispatch *dispatch, char *err,
                                  size_t errlen);
/* scheduler_wake - schedules may have changed (any thread; S may be
 * NULL) */
void scheduler_wake(struct scheduler *s);
/* scheduler_stop - finish the current batch, stop and free (NULL ok) */
void scheduler_stop(struct scheduler *s);

#endif
