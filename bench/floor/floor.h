/* What nbd-floor.c (handshake, reply batching, the no-device and memory floors) shares with direct.c
 * (the O_DIRECT file floor). */
#ifndef NBD_FLOOR_H
#define NBD_FLOOR_H
#include <endian.h>
#include <stdint.h>
#include <string.h>
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

/* One request header, decoded (the cookie stays in wire order: replies echo it as sent). */
struct request { uint32_t magic; uint16_t type; uint64_t cookie_be, offset; uint32_t length; };

static inline void decode_request(const char *h, struct request *q)
{
    memcpy(&q->magic, h, 4); memcpy(&q->type, h + 6, 2); memcpy(&q->cookie_be, h + 8, 8);
    memcpy(&q->offset, h + 16, 8); memcpy(&q->length, h + 24, 4);
    q->magic = be32toh(q->magic); q->type = be16toh(q->type);
    q->offset = be64toh(q->offset); q->length = be32toh(q->length);
}

extern uint64_t export_size;
extern int direct_fd;          /* -f: the O_DIRECT file; -1 otherwise */
extern int verbose;            /* -v: -f prints per-connection device latency and depth to stderr */

/* Queue a simple reply, or a structured READ chunk on a -S connection (plus READ data from the memory export or the zero buffer when data_len > 0). */
int queue_reply(struct conn *c, uint64_t cookie_be, uint32_t error, uint32_t data_len, uint64_t offset, int is_read);
/* Send everything queued in one sendmsg (resuming short sends); -1 when the connection is gone. */
int flush_batch(struct conn *c);
/* The O_DIRECT floors' rule: inside the export, at most max_bytes, 4 KiB aligned (else EINVAL). */
static inline int direct_request_bad(const struct request *q, uint32_t max_bytes)
{
    return q->offset > export_size || q->length > export_size - q->offset || q->length > max_bytes
           || ((q->offset | q->length) & 4095);
}

/* The -f serving loop (direct.c). */
void serve_direct(struct conn *c);
/* The -F serving loop: socket and device on two threads (split.c). */
void serve_split(struct conn *c);
#endif
