/*
 * The messages between the workers and the gateway thread: made by the
 * sender, freed by the receiver, whichever thread each one is.
 */
#include <string.h>

#include "mk_core/mk_mem.h"
#include "plugins/zmq/zmq.h"

struct zmq_wire *zmq_wire_create(enum zmq_wire_kind kind, const uint8_t *sid)
{
    struct zmq_wire *w = mk_mem_zalloc(sizeof(*w));

    if (!w) {
        return NULL;
    }
    w->kind = kind;
    memcpy(w->sid, sid, ZMQ_SID_LEN);
    zmq_msg_init(&w->payload);
    return w;
}

void zmq_wire_destroy(struct zmq_wire *w)
{
    zmq_msg_close(&w->payload);
    mk_mem_free(w->sids);
    mk_mem_free(w);
}

int zmq_wire_add_sid(struct zmq_wire *w, const uint8_t *sid)
{
    uint32_t size = w->sids_size ? w->sids_size * 2 : 16;
    void *sids;

    if (w->nsids == w->sids_size) {
        sids = mk_mem_realloc(w->sids, (size_t) size * ZMQ_SID_LEN);
        if (!sids) {
            return -1;
        }
        w->sids = sids;
        w->sids_size = size;
    }
    memcpy(w->sids[w->nsids++], sid, ZMQ_SID_LEN);
    return 0;
}
