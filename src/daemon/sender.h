/*
 * sender.h - picomaild's outbox sender (private to src/daemon/): one
 * thread delivering the outbox rows that events committed; sender.c says
 * how.
 */
#ifndef PICOMAIL_DAEMON_SENDER_H
#define PICOMAIL_DAEMON_SENDER_H

#include <pthread.h>
#include <stddef.h>

#include "daemon.h"

struct sender;

/* sender_start - the thread, with its own store connection through GATE;
 * DISPATCH (borrowed, may be NULL) is woken when a failure raised
 * system:delivery_failed.  NULL with a message in ERR. */
struct sender *sender_start(pthread_mutex_t *gate, struct dispatch *dispatch,
                            char *err, size_t errlen);
/* sender_wake - new rows may be due (any thread) */
void sender_wake(struct sender *s);
/* sender_stop - finish the current attempt, stop and free (NULL ok) */
void sender_stop(struct sender *s);

#endif
