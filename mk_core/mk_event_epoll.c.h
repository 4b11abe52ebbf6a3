/*
 * epoll backend, #included by mk_event.c (never compiled on its own).
 *
 * The backend keeps the array of the batch being dispatched so that
 * mk_event_del() can null out later reports for the same event: epoll may
 * return an fd that a handler earlier in the batch just closed and freed.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MK_EVENT_BACKEND_NAME "epoll"

struct mk_event_backend {
    int epfd;
    int wake_fd;                      /* eventfd for mk_event_loop_wakeup() */
    struct epoll_event *batch;
    int batch_max;
    int batch_n;                      /* reports in the current batch */
    int batch_pos;                    /* index being dispatched */
};

static uint32_t mk_event_epoll_mask(uint32_t mask)
{
    uint32_t e = EPOLLRDHUP;

    if (mask & MK_EVENT_READ) {
        e |= EPOLLIN;
    }
    if (mask & MK_EVENT_WRITE) {
        e |= EPOLLOUT;
    }
    if (!(mask & MK_EVENT_LEVEL)) {
        e |= EPOLLET;
    }
    return e;
}

static int mk_event_backend_init(struct mk_event_backend *b, int max_events,
                                 void *wake_ptr)
{
    struct epoll_event e;

    b->epfd = -1;
    b->wake_fd = -1;
    b->batch_n = 0;
    b->batch_pos = 0;
    b->batch_max = max_events;
    b->batch = mk_mem_zalloc((size_t) max_events * sizeof(*b->batch));
    if (b->batch == NULL) {
        goto error;
    }
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        goto error;
    }
    b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->wake_fd < 0) {
        goto error;
    }
    e.events = EPOLLIN | EPOLLET;
    e.data.ptr = wake_ptr;
    if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wake_fd, &e) != 0) {
        goto error;
    }
    return 0;

error:
    if (b->wake_fd >= 0) {
        close(b->wake_fd);
    }
    if (b->epfd >= 0) {
        close(b->epfd);
    }
    mk_mem_free(b->batch);
    return -1;
}

static void mk_event_backend_release(struct mk_event_backend *b)
{
    close(b->wake_fd);
    close(b->epfd);
    mk_mem_free(b->batch);
}

/* `registered`: the event is already in the interest set (modify it). */
static int mk_event_backend_set(struct mk_event_backend *b,
                                struct mk_event *ev, uint32_t mask,
                                int registered)
{
    struct epoll_event e;

    e.events = mk_event_epoll_mask(mask);
    e.data.ptr = ev;
    if (epoll_ctl(b->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                  ev->fd, &e) == 0) {
        return 0;
    }
    /* Our idea of "registered" can be wrong when the owner closed and
     * reused an fd behind our back; let the kernel's view decide. */
    if (!registered && errno == EEXIST) {
        return epoll_ctl(b->epfd, EPOLL_CTL_MOD, ev->fd, &e);
    }
    if (registered && errno == ENOENT) {
        return epoll_ctl(b->epfd, EPOLL_CTL_ADD, ev->fd, &e);
    }
    return -1;
}

static int mk_event_backend_del(struct mk_event_backend *b,
                                struct mk_event *ev)
{
    int i;

    for (i = b->batch_pos + 1; i < b->batch_n; i++) {
        if (b->batch[i].data.ptr == ev) {
            b->batch[i].data.ptr = NULL;
        }
    }
    /* The owner may already have closed the fd, which removed it from the
     * set; that is not an error for us. */
    if (epoll_ctl(b->epfd, EPOLL_CTL_DEL, ev->fd, NULL) != 0 &&
        errno != EBADF && errno != ENOENT) {
        return -1;
    }
    return 0;
}

/* Returns the number of reports, or -1 (errno set). */
static int mk_event_backend_wait(struct mk_event_backend *b, int timeout_ms)
{
    int n = epoll_wait(b->epfd, b->batch, b->batch_max, timeout_ms);

    b->batch_n = n > 0 ? n : 0;
    b->batch_pos = 0;
    return n;
}

/* Report i of the batch: its event pointer (NULL when deleted meanwhile)
 * and the mk_event mask. */
static void *mk_event_backend_get(struct mk_event_backend *b, int i,
                                  uint32_t *events)
{
    uint32_t e = b->batch[i].events;
    uint32_t out = 0;

    b->batch_pos = i;
    if (e & EPOLLIN) {
        out |= MK_EVENT_READ;
    }
    if (e & EPOLLOUT) {
        out |= MK_EVENT_WRITE;
    }
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        out |= MK_EVENT_CLOSE | MK_EVENT_READ | MK_EVENT_WRITE;
    }
    *events = out;
    return b->batch[i].data.ptr;
}

static void mk_event_backend_batch_done(struct mk_event_backend *b)
{
    b->batch_n = 0;
    b->batch_pos = 0;
}

static void mk_event_backend_wakeup(struct mk_event_backend *b)
{
    uint64_t one = 1;
    ssize_t n;

    /* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
    do {
        n = write(b->wake_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

static void mk_event_backend_wake_drain(struct mk_event_backend *b)
{
    uint64_t v;
    ssize_t n;

    do {
        n = read(b->wake_fd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
}

static int backend_fd(const struct mk_event_backend *b)
{
    return b->epfd;
}
