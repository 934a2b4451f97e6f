/* The raw io_uring (no liburing) and the slot sizes that direct.c and split.c share: setup, one SQE, enter. */
#ifndef NBD_FLOOR_RING_H
#define NBD_FLOOR_RING_H
#include <linux/io_uring.h>

#define SLOTS          256                /* requests in flight on the device per connection */
#define SLOT_BYTES     (1u << 20)         /* the largest request the O_DIRECT floors accept */
#define RING_ENTRIES   512                /* room for every slot's SQE plus the RECV in one batch */

struct ring {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    unsigned to_submit;
};

/* Sets up the ring on the calling thread (SINGLE_ISSUER + DEFER_TASKRUN where the kernel has them). */
int ring_init(struct ring *r);
/* A zeroed SQE, already published in the tail (the next ring_enter submits it). */
struct io_uring_sqe *sqe_get(struct ring *r);
/* Submits what is queued and waits for WAIT completions (EINTR/EAGAIN/EBUSY retried); -1 on error. */
int ring_enter(struct ring *r, unsigned wait);
#endif
