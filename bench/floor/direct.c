/*
 * nbd-floor -f FILE: the floor of an O_DIRECT file export (see nbd-floor.c for the floor idea).
 *
 * One thread per connection owns one io_uring (raw syscalls, no liburing). The same ring carries the
 * socket RECV and the device READ/WRITE on the file opened with O_DIRECT; replies leave in one plain
 * blocking sendmsg() per batch of completions, with READ replies pointing straight at the aligned buffer
 * the device read into. That is the shortest path an NBD server in front of an O_DIRECT file can take:
 * one device submission and one completion per request, batched syscalls, no copies in user space except a
 * WRITE payload moving from the receive buffer into its aligned buffer. FLUSH is an IORING_OP_FSYNC
 * (datasync); FUA, TRIM and the rest are answered "OK" without touching the device, which only flatters
 * the floor.
 */
#define _GNU_SOURCE
#include "floor.h"
#include "ring.h"
#include <endian.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define RECV_TAG       ((uint64_t)SLOTS)  /* user_data of the socket RECV; slots use 0..SLOTS-1 */

int direct_fd = -1;
int verbose;


struct slot { uint64_t cookie; uint32_t length; uint8_t is_read; int64_t submitted_ns; };

/* -v: per connection, how long the device took (SQE prepared -> CQE reaped) and how deep its queue was. */
struct device_stats { int64_t ios, device_ns, depth_sum; };

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int ring_init(struct ring *r)
{
    struct io_uring_params p;
    unsigned ladder[] = { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_COOP_TASKRUN, 0 };
    r->fd = -1;
    for (unsigned i = 0; i < sizeof ladder / sizeof *ladder && r->fd < 0; i++) {
        memset(&p, 0, sizeof p);
        p.flags = ladder[i];
        r->fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
    }
    if (r->fd < 0) return -1;
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_len > sq_len) sq_len = cq_len;   /* IORING_FEAT_SINGLE_MMAP: one mapping for both rings */
    char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || r->sqes == MAP_FAILED) return -1;
    r->sq_head = (unsigned *)(sq + p.sq_off.head); r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask); r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(sq + p.cq_off.head); r->cq_tail = (unsigned *)(sq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(sq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);
    r->to_submit = 0;
    return 0;
}

struct io_uring_sqe *sqe_get(struct ring *r)
{
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    struct io_uring_sqe *s = &r->sqes[idx];
    memset(s, 0, sizeof *s);
    r->sq_array[idx] = idx;
    atomic_store_explicit((_Atomic unsigned *)r->sq_tail, tail + 1, memory_order_release);
    r->to_submit++;
    return s;
}

int ring_enter(struct ring *r, unsigned wait)
{
    for (;;) {
        int n = (int)syscall(__NR_io_uring_enter, r->fd, r->to_submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
        if (n >= 0) { r->to_submit -= (unsigned)n < r->to_submit ? (unsigned)n : r->to_submit; return 0; }
        if (errno != EINTR && errno != EAGAIN && errno != EBUSY) return -1;
    }
}

void serve_direct(struct conn *c)
{
    struct ring r;
    struct slot slots[SLOTS];
    unsigned free_list[SLOTS], nfree = SLOTS;
    char *bufs = mmap(NULL, (size_t)SLOTS * SLOT_BYTES, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (bufs == MAP_FAILED || ring_init(&r)) return;
    for (unsigned i = 0; i < SLOTS; i++) free_list[i] = SLOTS - 1 - i;
    unsigned done[SLOTS], ndone = 0;   /* slots whose replies are in this batch */
    struct device_stats stats = { 0, 0, 0 };
    size_t start = 0, len = 0;         /* unparsed bytes: c->buf[start, len) */
    int recv_armed = 0, closing = 0;
    for (;;) {
        /* Parse every whole request while slots are free; a WRITE waits for its whole payload. Parsing
         * never moves the buffer, so it is safe while the RECV into c->buf + len is in flight. */
        while (!closing && len - start >= REQ_SIZE && nfree > 0) {
            struct request q;
            decode_request(c->buf + start, &q);
            if (q.magic != REQUEST_MAGIC || q.type == CMD_DISC || (q.type == CMD_WRITE && q.length > SLOT_BYTES)) {
                closing = 1;
                break;
            }
            if (q.type == CMD_WRITE && len - start - REQ_SIZE < q.length) break;
            start += REQ_SIZE;
            uint16_t type = q.type; uint32_t length = q.length; uint64_t cookie = q.cookie_be, offset = q.offset;
            int bad = direct_request_bad(&q, SLOT_BYTES);
            if ((type != CMD_READ && type != CMD_WRITE && type != CMD_FLUSH) || bad) {
                if (type == CMD_WRITE) start += length;
                if (queue_reply(c, cookie, bad ? EINVAL_NBD : 0, 0, 0, 0)) closing = 1;
                continue;
            }
            unsigned i = free_list[--nfree];
            slots[i] = (struct slot){ cookie, length, type == CMD_READ, verbose ? now_ns() : 0 };
            stats.depth_sum += SLOTS - nfree;
            char *buf = bufs + (size_t)i * SLOT_BYTES;
            struct io_uring_sqe *s = sqe_get(&r);
            s->fd = direct_fd; s->user_data = i;
            if (type == CMD_FLUSH) { s->opcode = IORING_OP_FSYNC; s->fsync_flags = IORING_FSYNC_DATASYNC; continue; }
            s->opcode = type == CMD_READ ? IORING_OP_READ : IORING_OP_WRITE;
            s->addr = (uint64_t)(uintptr_t)buf; s->len = length; s->off = offset;
            if (type == CMD_WRITE) { memcpy(buf, c->buf + start, length); start += length; }
        }
        if (!recv_armed && !closing) {
            memmove(c->buf, c->buf + start, len - start);
            len -= start; start = 0;
            if (len < RECV_BUF) {
                struct io_uring_sqe *s = sqe_get(&r);
                s->opcode = IORING_OP_RECV; s->fd = c->fd;
                s->addr = (uint64_t)(uintptr_t)(c->buf + len); s->len = (uint32_t)(RECV_BUF - len);
                s->user_data = RECV_TAG;
                recv_armed = 1;
            }
        }
        if (closing && nfree == SLOTS) break;
        if (c->niov > 0 && flush_batch(c)) closing = 1;   /* answers given without the device must not wait */
        if (ring_enter(&r, 1)) break;
        unsigned head = *r.cq_head;
        unsigned tail = atomic_load_explicit((_Atomic unsigned *)r.cq_tail, memory_order_acquire);
        for (; head != tail; head++) {
            struct io_uring_cqe *e = &r.cqes[head & *r.cq_mask];
            if (e->user_data == RECV_TAG) {
                recv_armed = 0;
                if (e->res <= 0) closing = 1; else len += (size_t)e->res;
                continue;
            }
            struct slot *sl = &slots[e->user_data];
            if (verbose) { stats.ios++; stats.device_ns += now_ns() - sl->submitted_ns; }
            int ok = e->res >= 0 && (uint32_t)e->res == sl->length;
            if (queue_reply(c, sl->cookie, ok ? 0 : 5 /* EIO */, 0, 0, 0)) closing = 1;
            else if (sl->is_read && ok)
                c->iov[c->niov++] = (struct iovec){ bufs + (size_t)e->user_data * SLOT_BYTES, sl->length };
            done[ndone++] = (unsigned)e->user_data;
        }
        atomic_store_explicit((_Atomic unsigned *)r.cq_head, head, memory_order_release);
        if (flush_batch(c)) closing = 1;   /* one sendmsg for every completion this wake-up reaped */
        while (ndone > 0) free_list[nfree++] = done[--ndone];
    }
    if (verbose && stats.ios > 0)
        fprintf(stderr, "nbd-floor -f: %lld device I/Os, %.1f us each from submission to reaping, %.1f in flight on average\n",
                (long long)stats.ios, stats.device_ns / 1e3 / stats.ios, (double)stats.depth_sum / stats.ios);
    shutdown(c->fd, SHUT_RDWR);        /* ends a RECV still in flight before the ring goes */
    close(r.fd);
    munmap(bufs, (size_t)SLOTS * SLOT_BYTES);
}
