/*
 * waker.h - how picomaild's worker threads sleep (private to
 * src/daemon/): until woken, told to stop, or a timeout, without busy
 * waiting.  A struct waker is embedded in the worker; its lock may also
 * guard the worker's other shared fields.
 */
#ifndef PICOMAIL_DAEMON_WAKER_H
#define PICOMAIL_DAEMON_WAKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct waker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;                 /* guarded by LOCK */
    bool stop;                  /* guarded by LOCK */
};

void waker_init(struct waker *w);
void waker_destroy(struct waker *w);
/* waker_wake - the worker has something to do (any thread) */
void waker_wake(struct waker *w);
/* waker_stop - ask the worker to stop (any thread) */
void waker_stop(struct waker *w);
/* waker_stopping - whether a stop was asked */
bool waker_stopping(struct waker *w);
/* waker_wait - sleep until woken, a stop or MS milliseconds; clears the
 * wake-up; true when the worker must stop */
bool waker_wait(struct waker *w, int64_t ms);
/* now_ms - wall-clock time in milliseconds since the epoch */
int64_t now_ms(void);

#endif
