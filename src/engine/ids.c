/*
 * ids.c - cuid-like identifiers; see ids.h.
 */
#include "picomail/ids.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
static atomic_uint counter;

/* put_base36 - V in exactly WIDTH base-36 digits (the low ones) */
static void
put_base36(char *out, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = digits[v % 36];
        v /= 36;
    }
}

void
id_new(char *buf)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    unsigned n = atomic_fetch_add(&counter, 1);
    /* random bytes come from the kernel a pool at a time (one system
       call per 32 ids), kept per thread */
    static _Thread_local unsigned char pool[512];
    static _Thread_local size_t pool_pos = sizeof pool;
    if (pool_pos + 12 > sizeof pool) {
        size_t got = 0;
        while (got < sizeof pool) {
            ssize_t r = getrandom(pool + got, sizeof pool - got, 0);
            if (r > 0)
                got += (size_t)r;
        }
        pool_pos = 0;
    }
    const unsigned char *rnd = pool + pool_pos;
    pool_pos += 12;
    buf[0] = 'c';
    put_base36(buf + 1, ms, 8);             /* 36^8 ms: until year 2059+ */
    put_base36(buf + 9, n, 4);
    for (int i = 0; i < 12; i++)
        buf[13 + i] = digits[rnd[i] % 36];  /* 36 does not divide 256: the
                                               slight bias costs < 0.1 bit */
    buf[ID_LEN] = '\0';
}

bool
id_valid_eci(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}
