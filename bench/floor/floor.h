/* What nbd-floor.c (handshake, reply batching, the no-device and memory floors) shares with direct.c
 * (the O_DIRECT file floor). */
#ifndef NBD_FLOOR_H
#define NBD_FLOOR_H
#include <stdint.h>
#include <sys/uio.h>

#define REQUEST_MAGIC         0x25609513u
#define SIMPLE_REPLY_MAGIC    0x67446698u
#define CMD_READ              0
#define CMD_WRITE             1
#define CMD_DISC              2
#define CMD_FLUSH             3
#define REQ_SIZE              28
#define EINVAL_NBD            22

#define RECV_BUF              (4u << 20)      /* per connection: a whole QD8 x 1 MiB write burst and more */
#define MAX_IOV               1024            /* IOV_MAX on Linux: flush the batch when it fills up */

/* A simple reply (16 bytes) or, with -S, a structured OFFSET_DATA chunk header plus its offset (28 bytes). */
struct reply { unsigned char bytes[28]; };

struct conn {
    int fd;
    char *buf;                 /* RECV_BUF bytes of received, not yet parsed data */
    char *stage;               /* -t: a WRITE payload until it is whole (allocated on first use) */
    struct reply *replies;     /* one per request answered in this batch */
    struct iovec iov[MAX_IOV];
    int niov, nreplies;
    int structured;            /* -S and the client asked for structured replies: READ answers are chunks */
};

extern uint64_t export_size;
extern int direct_fd;          /* -f: the O_DIRECT file; -1 otherwise */
extern int verbose;            /* -v: -f prints per-connection device latency and depth to stderr */

/* Queue a simple reply, or a structured READ chunk on a -S connection (plus READ data from the memory export or the zero buffer when data_len > 0). */
int queue_reply(struct conn *c, uint64_t cookie_be, uint32_t error, uint32_t data_len, uint64_t offset, int is_read);
/* Send everything queued in one sendmsg (resuming short sends); -1 when the connection is gone. */
int flush_batch(struct conn *c);
/* The -f serving loop (direct.c). */
void serve_direct(struct conn *c);
/* The -F serving loop: socket and device on two threads (split.c). */
void serve_split(struct conn *c);
#endif
