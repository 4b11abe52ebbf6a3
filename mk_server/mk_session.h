#ifndef MK_SERVER_SESSION_H
#define MK_SERVER_SESSION_H

/*
 * Sessions (private part; the API is the "Sessions" section of
 * mk_plugin.h). A session is what a backend talks to: a sid, the worker
 * that owns it, its vhost, its owner and its backend binding. Only the
 * owning worker touches a session's fields; other threads reach it by
 * sid through mk_session_post, which routes to the owner's inbox.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "mk_core/mk_channel.h"
#include "mk_core/mk_list.h"
#include "mk_server/mk_plugin.h"

/* One per worker thread: the inbox other threads post session messages
 * to, and the sessions the worker owns (to unlink those left at exit). */
struct mk_session_worker {
    struct mk_channel inbox;
    struct mk_list sessions;
    int id;
};

struct mk_session {
    uint8_t sid[MK_SESSION_SID_LEN];
    struct mk_session_worker *w;         /* immutable: read under the table lock */
    struct mk_server *srv;               /* its message-type registry */
    struct mk_vhost *vhost;
    const struct mk_session_owner *owner;
    void *owner_data;
    struct mk_conn *conn;                /* an upgraded connection, or NULL */
    const struct mk_backend *backend;
    void *backend_data;
    int held;                            /* the backend is full */
    struct mk_list _head;                /* mk_session_worker.sessions */
};

/* Any thread: the id of the worker owning `sid`, or -1 when no live
 * session has it (mk_group_fanout's batches). */
int mk_session_owner(const uint8_t *sid);

/* Worker thread start and end (mk_worker.c). Start: 0 or -1. Stop runs
 * after the plugins' worker_exit: a session still open then is unlinked
 * (logged) and every message still queued for the worker is dropped. */
int  mk_session_worker_start(struct mk_worker *w);
void mk_session_worker_stop(struct mk_worker *w);

#endif
