/*
 * listen.c - picomaild's listening sockets from "host:port" and
 * "unix:PATH" specifications; see daemon.h.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "picomail/mem.h"

static int
open_unix(const char *path, unsigned mode, char *err, size_t errlen)
{
    struct sockaddr_un sa;

    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "unix:%s: path too long", path);
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "unix:%s: socket: %s", path, strerror(errno));
        return -1;
    }
    /* a socket left by a previous run (we are the only owner of the path:
       refuse to remove anything that is not a socket) */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "unix:%s: exists and is not a socket",
                     path);
            close(fd);
            return -1;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(path, mode) != 0 || listen(fd, 128) != 0) {
        snprintf(err, errlen, "unix:%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int
open_tcp(const char *spec, char *err, size_t errlen)
{
    char host[256];
    const char *port;

    if (spec[0] == '[') {
        const char *close_br = strchr(spec, ']');
        if (close_br == NULL || close_br[1] != ':' ||
            (size_t)(close_br - spec - 1) >= sizeof host) {
            snprintf(err, errlen, "%s: expected [ADDRESS]:PORT", spec);
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(close_br - spec - 1));
        host[close_br - spec - 1] = '\0';
        port = close_br + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host) {
            snprintf(err, errlen, "%s: expected HOST:PORT or unix:PATH",
                     spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*host != '\0' ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", spec, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family,
                    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    res->ai_protocol);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, 128) != 0) {
        snprintf(err, errlen, "%s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int
listen_open(const char *specs, int kind, unsigned unix_mode,
            struct listener **ls, size_t *n_ls, char *err, size_t errlen)
{
    char *copy = xstrdup(specs), *save = NULL;
    int ret = 0;

    for (char *item = strtok_r(copy, ", \t", &save); item != NULL;
         item = strtok_r(NULL, ", \t", &save)) {
        bool is_unix = strncmp(item, "unix:", 5) == 0;
        int fd = is_unix ? open_unix(item + 5, unix_mode, err, errlen)
                         : open_tcp(item, err, errlen);
        if (fd < 0) {
            ret = -1;
            break;
        }
        *ls = xreallocarray(*ls, *n_ls + 1, sizeof **ls);
        (*ls)[*n_ls] = (struct listener){
            .fd = fd, .kind = kind, .spec = xstrdup(item),
            .unix_path = is_unix ? xstrdup(item + 5) : NULL};
        (*n_ls)++;
    }
    free(copy);
    return ret;
}

void
listen_close_all(struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ls[i].fd >= 0)
            close(ls[i].fd);
        if (ls[i].unix_path != NULL)
            unlink(ls[i].unix_path);
        free(ls[i].unix_path);
        free(ls[i].spec);
    }
    free(ls);
}
