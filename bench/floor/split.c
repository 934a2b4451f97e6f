/*
 * nbd-floor -F FILE: floor-direct (direct.c) with the socket and the device on two threads per connection.
 *
 * The question it answers: is one thread per connection, carrying both the socket and the device ring, what
 * holds an O_DIRECT server below the device? Here a receive thread does blocking recv(), parses requests,
 * copies WRITE payloads into their aligned slot buffer and hands slot numbers to the device thread through a
 * lock-free single-producer queue (an eventfd wakes the device thread only when it sleeps). The device
 * thread owns the io_uring: it submits the READ/WRITE/FSYNC, reaps completions and answers each batch with
 * one sendmsg whose READ iovecs point at the buffers the device filled, then hands the slots back through a
 * second queue. Simple replies; requests must be 4 KiB aligned, as in direct.c.
 */
#define _GNU_SOURCE
#include "floor.h"
#include "ring.h"
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAKE_TAG     ((uint64_t)SLOTS)
#define SLOT_OTHER   0xffffu          /* a request answered without the device (TRIM, CACHE, ...) */

/* A single-producer single-consumer queue of slot numbers (capacity SLOTS, never overfull: SLOTS exist). */
struct spsc { _Atomic unsigned head, tail; unsigned v[SLOTS]; };

static void spsc_push(struct spsc *q, unsigned x)
{
    unsigned t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    q->v[t % SLOTS] = x;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
}

static int spsc_pop(struct spsc *q, unsigned *x)
{
    unsigned h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire)) return 0;
    *x = q->v[h % SLOTS];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return 1;
}

struct split_slot { uint64_t cookie, offset; uint32_t length; uint16_t type; uint32_t error; };

struct split {
    struct conn *c;
    char *bufs;
    struct split_slot slots[SLOTS];
    struct spsc submit, freed;        /* receive -> device, device -> receive */
    int efd;
    _Atomic int device_sleeping;
    _Atomic int receive_done;         /* the receive thread stopped: finish what is in flight and leave */
};

static void wake_device(struct split *s)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&s->device_sleeping, memory_order_relaxed)) {
        uint64_t one = 1;
        (void)!write(s->efd, &one, sizeof one);
    }
}

static void *device_thread(void *arg)
{
    struct split *s = arg;
    struct conn *c = s->c;
    struct ring r;
    uint64_t wake_value;
    unsigned done[SLOTS], ndone = 0, in_flight = 0;
    int wake_armed = 0, broken = 0;
    if (ring_init(&r)) { atomic_store(&s->receive_done, 1); return NULL; }
    for (;;) {
        unsigned i;
        while (spsc_pop(&s->submit, &i)) {
            struct split_slot *sl = &s->slots[i];
            if (sl->type != CMD_READ && sl->type != CMD_WRITE && sl->type != CMD_FLUSH) {
                if (queue_reply(c, sl->cookie, sl->error, 0, 0, 0)) broken = 1;
                done[ndone++] = i;
                continue;
            }
            struct io_uring_sqe *e = sqe_get(&r);
            e->fd = direct_fd; e->user_data = i;
            in_flight++;
            if (sl->type == CMD_FLUSH) { e->opcode = IORING_OP_FSYNC; e->fsync_flags = IORING_FSYNC_DATASYNC; continue; }
            e->opcode = sl->type == CMD_READ ? IORING_OP_READ : IORING_OP_WRITE;
            e->addr = (uint64_t)(uintptr_t)(s->bufs + (size_t)i * SLOT_BYTES); e->len = sl->length; e->off = sl->offset;
        }
        if (!wake_armed) {
            struct io_uring_sqe *e = sqe_get(&r);
            e->opcode = IORING_OP_READ; e->fd = s->efd;
            e->addr = (uint64_t)(uintptr_t)&wake_value; e->len = sizeof wake_value; e->user_data = WAKE_TAG;
            wake_armed = 1;
        }
        if (ndone > 0) {                         /* answers that needed no device */
            if (flush_batch(c)) broken = 1;
            while (ndone > 0) spsc_push(&s->freed, done[--ndone]);
        }
        if (in_flight == 0 && atomic_load(&s->receive_done)) break;
        /* Sleep only if the receive thread has queued nothing since the drain above. */
        atomic_store(&s->device_sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        unsigned wait = atomic_load_explicit(&s->submit.head, memory_order_relaxed)
                        == atomic_load_explicit(&s->submit.tail, memory_order_acquire) ? 1 : 0;
        if (ring_enter(&r, wait)) break;
        atomic_store(&s->device_sleeping, 0);
        unsigned head = *r.cq_head;
        unsigned tail = atomic_load_explicit((_Atomic unsigned *)r.cq_tail, memory_order_acquire);
        for (; head != tail; head++) {
            struct io_uring_cqe *e = &r.cqes[head & *r.cq_mask];
            if (e->user_data == WAKE_TAG) { wake_armed = 0; continue; }
            struct split_slot *sl = &s->slots[e->user_data];
            int ok = e->res >= 0 && (sl->type == CMD_FLUSH || (uint32_t)e->res == sl->length);
            in_flight--;
            if (!broken && queue_reply(c, sl->cookie, ok ? 0 : 5 /* EIO */, 0, 0, 0)) broken = 1;
            else if (!broken && sl->type == CMD_READ && ok)
                c->iov[c->niov++] = (struct iovec){ s->bufs + (size_t)e->user_data * SLOT_BYTES, sl->length };
            done[ndone++] = (unsigned)e->user_data;
        }
        atomic_store_explicit((_Atomic unsigned *)r.cq_head, head, memory_order_release);
        if (!broken && flush_batch(c)) broken = 1;   /* one sendmsg per wake-up */
        while (ndone > 0) spsc_push(&s->freed, done[--ndone]);
        if (broken) shutdown(c->fd, SHUT_RDWR);      /* ends the receive thread's recv */
    }
    close(r.fd);
    return NULL;
}

void serve_split(struct conn *c)
{
    struct split *s = calloc(1, sizeof *s);
    if (!s) return;
    s->c = c;
    s->bufs = mmap(NULL, (size_t)SLOTS * SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->efd = eventfd(0, EFD_CLOEXEC);
    pthread_t device;
    if (s->bufs == MAP_FAILED || s->efd < 0 || pthread_create(&device, NULL, device_thread, s)) { free(s); return; }
    for (unsigned i = 0; i < SLOTS; i++) spsc_push(&s->freed, i);
    size_t len = 0, p = 0;
    for (int closing = 0; !closing;) {
        ssize_t n = recv(c->fd, c->buf + len, RECV_BUF - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        int queued = 0;
        while (len - p >= REQ_SIZE) {
            struct request q;
            decode_request(c->buf + p, &q);
            if (q.magic != REQUEST_MAGIC || q.type == CMD_DISC || (q.type == CMD_WRITE && q.length > SLOT_BYTES)) { closing = 1; break; }
            if (q.type == CMD_WRITE && len - p - REQ_SIZE < q.length) break;
            unsigned i;
            while (!spsc_pop(&s->freed, &i)) { wake_device(s); sched_yield(); }   /* never with QD <= SLOTS */
            p += REQ_SIZE;
            int bad = direct_request_bad(&q, SLOT_BYTES);
            s->slots[i] = (struct split_slot){ q.cookie_be, q.offset, q.length, bad ? SLOT_OTHER : q.type, bad ? EINVAL_NBD : 0 };
            if (q.type == CMD_WRITE) {
                if (!bad) memcpy(s->bufs + (size_t)i * SLOT_BYTES, c->buf + p, q.length);
                p += q.length;
            }
            spsc_push(&s->submit, i);
            queued = 1;
        }
        if (queued) wake_device(s);
        memmove(c->buf, c->buf + p, len - p);
        len -= p; p = 0;
    }
    atomic_store(&s->receive_done, 1);
    uint64_t one = 1;
    (void)!write(s->efd, &one, sizeof one);
    pthread_join(device, NULL);
    close(s->efd);
    munmap(s->bufs, (size_t)SLOTS * SLOT_BYTES);
    free(s);
}
