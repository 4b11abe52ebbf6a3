/*
 * kqueue backend (FreeBSD, macOS), #included by mk_event.c.
 *
 * UNTESTED on this project's CI, which runs Linux only: this file is written
 * against the kqueue(2) man pages as a mirror of mk_event_epoll.c.h and has
 * only been syntax-checked. Differences from epoll worth knowing:
 *  - READ and WRITE interest are two filters (EVFILT_READ, EVFILT_WRITE), so
 *    one fd can produce two reports in a batch and the handler is called once
 *    for each; handlers already cope since they loop until EAGAIN.
 *  - Edge-triggered is EV_CLEAR; EV_EOF stands for EPOLLRDHUP/EPOLLHUP.
 *  - The loop wake-up is an EVFILT_USER event instead of an eventfd.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#define MK_EVENT_BACKEND_NAME "kqueue"
#define MK_EVENT_KQUEUE_WAKE_IDENT 1

struct mk_event_backend {
    int kq;
    void *wake_ptr;
    struct kevent *batch;
    int batch_max;
    int batch_n;
    int batch_pos;
};

static int mk_event_backend_init(struct mk_event_backend *b, int max_events,
                                 void *wake_ptr)
{
    struct kevent ke;

    b->kq = -1;
    b->wake_ptr = wake_ptr;
    b->batch_n = 0;
    b->batch_pos = 0;
    b->batch_max = max_events;
    b->batch = mk_mem_zalloc((size_t) max_events * sizeof(*b->batch));
    if (b->batch == NULL) {
        goto error;
    }
    b->kq = kqueue();
    if (b->kq < 0) {
        goto error;
    }
    EV_SET(&ke, MK_EVENT_KQUEUE_WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR,
           0, 0, wake_ptr);
    if (kevent(b->kq, &ke, 1, NULL, 0, NULL) != 0) {
        goto error;
    }
    return 0;

error:
    if (b->kq >= 0) {
        close(b->kq);
    }
    mk_mem_free(b->batch);
    return -1;
}

static void mk_event_backend_release(struct mk_event_backend *b)
{
    close(b->kq);
    mk_mem_free(b->batch);
}

/* Adds or deletes one filter; deleting a filter that is not there is fine. */
static int mk_event_kqueue_filter(struct mk_event_backend *b,
                                  struct mk_event *ev, int filter, int on,
                                  uint32_t mask)
{
    struct kevent ke;
    unsigned short flags;

    if (on) {
        flags = EV_ADD | EV_ENABLE;
        if (!(mask & MK_EVENT_LEVEL)) {
            flags |= EV_CLEAR;
        }
    }
    else {
        flags = EV_DELETE;
    }
    EV_SET(&ke, ev->fd, filter, flags, 0, 0, ev);
    if (kevent(b->kq, &ke, 1, NULL, 0, NULL) != 0) {
        if (!on && (errno == ENOENT || errno == EBADF)) {
            return 0;
        }
        return -1;
    }
    return 0;
}

static int mk_event_backend_set(struct mk_event_backend *b,
                                struct mk_event *ev, uint32_t mask,
                                int registered)
{
    (void) registered;          /* EV_ADD on an existing filter modifies it */
    if (mk_event_kqueue_filter(b, ev, EVFILT_READ,
                               (mask & MK_EVENT_READ) != 0, mask) != 0) {
        return -1;
    }
    return mk_event_kqueue_filter(b, ev, EVFILT_WRITE,
                                  (mask & MK_EVENT_WRITE) != 0, mask);
}

static int mk_event_backend_del(struct mk_event_backend *b,
                                struct mk_event *ev)
{
    int i;

    for (i = b->batch_pos + 1; i < b->batch_n; i++) {
        if (b->batch[i].udata == (void *) ev) {
            b->batch[i].udata = NULL;
        }
    }
    if (mk_event_kqueue_filter(b, ev, EVFILT_READ, 0, 0) != 0) {
        return -1;
    }
    return mk_event_kqueue_filter(b, ev, EVFILT_WRITE, 0, 0);
}

static int mk_event_backend_wait(struct mk_event_backend *b, int timeout_ms)
{
    struct timespec ts;
    struct timespec *tsp = NULL;
    int n;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long) (timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(b->kq, NULL, 0, b->batch, b->batch_max, tsp);
    b->batch_n = n > 0 ? n : 0;
    b->batch_pos = 0;
    return n;
}

static void *mk_event_backend_get(struct mk_event_backend *b, int i,
                                  uint32_t *events)
{
    struct kevent *ke = &b->batch[i];
    uint32_t out = 0;

    b->batch_pos = i;
    if (ke->filter == EVFILT_READ) {
        out |= MK_EVENT_READ;
    }
    else if (ke->filter == EVFILT_WRITE) {
        out |= MK_EVENT_WRITE;
    }
    if (ke->flags & (EV_EOF | EV_ERROR)) {
        out |= MK_EVENT_CLOSE | MK_EVENT_READ | MK_EVENT_WRITE;
    }
    *events = out;
    return (void *) ke->udata;
}

static void mk_event_backend_batch_done(struct mk_event_backend *b)
{
    b->batch_n = 0;
    b->batch_pos = 0;
}

static void mk_event_backend_wakeup(struct mk_event_backend *b)
{
    struct kevent ke;

    EV_SET(&ke, MK_EVENT_KQUEUE_WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0,
           b->wake_ptr);
    kevent(b->kq, &ke, 1, NULL, 0, NULL);
}

static void mk_event_backend_wake_drain(struct mk_event_backend *b)
{
    (void) b;                   /* EV_CLEAR resets the user event */
}

static int backend_fd(const struct mk_event_backend *b)
{
    return b->kq;
}
