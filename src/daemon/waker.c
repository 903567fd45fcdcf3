/*
 * waker.c - worker threads' sleep and wake-up; see waker.h.
 */
#include "waker.h"

#include <errno.h>
#include <time.h>

void
waker_init(struct waker *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->woken = false;
    w->stop = false;
}

void
waker_destroy(struct waker *w)
{
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

void
waker_wake(struct waker *w)
{
    pthread_mutex_lock(&w->lock);
    w->woken = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void
waker_stop(struct waker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

bool
waker_stopping(struct waker *w)
{
    pthread_mutex_lock(&w->lock);
    bool stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

bool
waker_wait(struct waker *w, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (ms < 0)
        ms = 0;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->woken && !w->stop &&
           pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
        ;
    bool stop = w->stop;
    w->woken = false;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
