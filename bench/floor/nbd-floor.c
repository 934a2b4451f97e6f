/*
 * nbd-floor: the cheapest NBD server we can write, as a measuring stick for bench/compare.sh.
 *
 * It has no device at all: READ answers with bytes from a static zero buffer, WRITE receives the
 * payload and throws it away, FLUSH/TRIM/anything else answers "OK", DISC closes. Whatever CPU it
 * spends per I/O is (close to) the least any NBD server must spend on this kernel: the syscalls to
 * move the request and reply bytes and the kernel's copies of the payload. Whatever throughput fio
 * reaches against it is (close to) the most fio's nbd engine can drive on this machine. It is NOT a
 * usable server (no data is kept).
 *
 * Data path, per connection (one blocking thread each):
 *   recv() everything available into a big buffer -> parse every whole request in it -> answer
 *   all of them with ONE sendmsg() (iovecs: reply headers + the zero buffer for READ data).
 * Simple replies only (structured replies / extended headers / meta contexts are refused), unless -S:
 * then NBD_OPT_STRUCTURED_REPLY is accepted and READ is answered with one OFFSET_DATA chunk (flag DONE),
 * as the protocol requires once a client negotiated them (libnbd does). A structured READ reply costs the
 * client more receives than a simple one, so -S is the floor a real server (nbdkit, nbdfast) is held to.
 *
 * With -m it is instead the floor of a *memory* export: the export is SIZE bytes of anonymous memory,
 * READ replies point straight into it (one kernel copy out), WRITE payloads are received straight into
 * it (one kernel copy in; only the part that arrived with the header batch is memcpy'd). That is the
 * least a server that keeps the data can do, with real cache misses on the 1 GiB region.
 *
 * With -m -t the memory export is *transactional*: a WRITE payload is received into a staging buffer
 * and copied into the export only once it is whole, so a payload cut short by a dropped client is
 * never applied (research/reliability.md section (b) 61; nbdfast and nbdkit both keep that rule).
 * One memcpy per written byte more than plain -m: the least such a server can do.
 *
 * With -M FILE the export is FILE mapped MAP_SHARED instead of anonymous memory: READ replies point into its
 * page cache and WRITE payloads are copied into it, so with -t it is the least a page-cache file server that
 * keeps the not-applied rule can do (one copy off the socket, one into the page cache). That copy skips the
 * filesystem's write path, which runs later at writeback; -P applies the staged payload with pwrite(2)
 * instead, as nbdfast, nbdkit's file plugin and qemu-nbd do, so the filesystem work is paid per request.
 *
 * With -f FILE it is the floor of an O_DIRECT file export instead: see direct.c. -F FILE is the same with the
 * socket and the device on two threads per connection: see split.c.
 *
 * Usage: nbd-floor -s SIZE_BYTES [(-m | -M FILE [-P]) [-t] [-S] | -f FILE [-v] | -F FILE] (-U SOCKET_PATH | -p PORT [-b ADDR])
 * Build: bench/floor/build.sh (clang -O2; nbd-floor.c, direct.c and split.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

#include "floor.h"

/* Handshake (fixed newstyle). */
#define NBDMAGIC              0x4e42444d41474943ULL
#define IHAVEOPT              0x49484156454F5054ULL
#define OPT_REPLY_MAGIC       0x3e889045565a9ULL
#define FLAG_FIXED_NEWSTYLE   (1u << 0)
#define FLAG_NO_ZEROES        (1u << 1)
#define FLAG_C_NO_ZEROES      (1u << 1)
#define OPT_EXPORT_NAME       1
#define OPT_ABORT             2
#define OPT_INFO              6
#define OPT_GO                7
#define OPT_STRUCTURED_REPLY  8
#define STRUCTURED_MAGIC      0x668e33efu
#define REPLY_FLAG_DONE       1
#define REPLY_TYPE_OFFSET_DATA 1
#define REPLY_TYPE_ERROR      ((1u << 15) + 1)
#define REP_ACK               1u
#define REP_INFO              3u
#define REP_ERR_UNSUP         0x80000001u
#define INFO_EXPORT           0
/* Transmission flags: HAS_FLAGS | SEND_FLUSH | SEND_FUA | CAN_MULTI_CONN. */
#define TX_FLAGS              ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 8))

#define ZERO_CHUNK            (1u << 20)      /* READ data comes from here, in iovecs of up to 1 MiB */

/* Never written: it stays in .bss, so READ replies copy from the (shared) zero page. That is cheaper
 * than any real memory export (whose source bytes miss the caches), which is the point of a floor. */
static char zeroes[ZERO_CHUNK];
uint64_t export_size;
static char *mem;              /* -m: the memory export; NULL: no device at all */
static int staged;             /* -t: stage WRITE payloads so a cut-short one is never applied */
static int use_pwrite;         /* -P (with -M -t): apply staged WRITEs with pwrite(2), as a file server does */
static int pwrite_fd = -1;     /* -P: the -M FILE, kept open for those pwrites */
static int structured_ok;      /* -S: accept NBD_OPT_STRUCTURED_REPLY */
static int split_threads;      /* -F: the O_DIRECT floor with socket and device on two threads (split.c) */
#define MAX_STAGE             (32u << 20)

static int read_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r; n -= (size_t)r;
    }
    return 0;
}

/* Send every iovec, resuming after short sends. */
static int send_all(int fd, struct iovec *iov, int niov)
{
    while (niov > 0) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)niov };
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        while (niov > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; niov--; }
        if (niov > 0) { iov->iov_base = (char *)iov->iov_base + w; iov->iov_len -= (size_t)w; }
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
    struct iovec v = { .iov_base = (void *)p, .iov_len = n };
    return send_all(fd, &v, 1);
}

static int opt_reply(int fd, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
    struct { uint64_t magic; uint32_t opt, type, len; } __attribute__((packed)) h = {
        htobe64(OPT_REPLY_MAGIC), htobe32(opt), htobe32(type), htobe32(len) };
    struct iovec v[2] = { { &h, sizeof h }, { (void *)data, len } };
    return send_all(fd, v, len ? 2 : 1);
}

/* Returns 0 when the client chose the export (GO / EXPORT_NAME), -1 to close. */
static int handshake(struct conn *c)
{
    int fd = c->fd;
    struct { uint64_t magic, opt; uint16_t flags; } __attribute__((packed)) greet = {
        htobe64(NBDMAGIC), htobe64(IHAVEOPT), htobe16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES) };
    uint32_t cflags;
    if (write_full(fd, &greet, sizeof greet) || read_full(fd, &cflags, 4)) return -1;
    cflags = be32toh(cflags);
    for (;;) {
        struct { uint64_t magic; uint32_t opt, len; } __attribute__((packed)) o;
        if (read_full(fd, &o, sizeof o) || be64toh(o.magic) != IHAVEOPT) return -1;
        uint32_t opt = be32toh(o.opt), len = be32toh(o.len);
        if (len > 65536) return -1;
        char data[len ? len : 1];
        if (len && read_full(fd, data, len)) return -1;
        switch (opt) {
        case OPT_EXPORT_NAME: {        /* old-style end of handshake: size, flags, maybe 124 zeroes */
            struct { uint64_t size; uint16_t flags; char pad[124]; } __attribute__((packed)) r = {
                htobe64(export_size), htobe16(TX_FLAGS), {0} };
            return write_full(fd, &r, (cflags & FLAG_C_NO_ZEROES) ? 10 : sizeof r);
        }
        case OPT_ABORT:
            opt_reply(fd, opt, REP_ACK, NULL, 0);
            return -1;
        case OPT_INFO:
        case OPT_GO: {                 /* any name is fine; info requests are ignored */
            struct { uint16_t type; uint64_t size; uint16_t flags; } __attribute__((packed)) info = {
                htobe16(INFO_EXPORT), htobe64(export_size), htobe16(TX_FLAGS) };
            if (opt_reply(fd, opt, REP_INFO, &info, sizeof info) || opt_reply(fd, opt, REP_ACK, NULL, 0))
                return -1;
            if (opt == OPT_GO) return 0;
            break;
        }
        case OPT_STRUCTURED_REPLY:
            if (structured_ok && len == 0) {
                if (opt_reply(fd, opt, REP_ACK, NULL, 0)) return -1;
                c->structured = 1;
                break;
            }
            /* fall through */
        default:                       /* SET_META_CONTEXT, EXTENDED_HEADERS, ... */
            if (opt_reply(fd, opt, REP_ERR_UNSUP, NULL, 0)) return -1;
        }
    }
}

int flush_batch(struct conn *c)
{
    int rc = c->niov ? send_all(c->fd, c->iov, c->niov) : 0;
    c->niov = 0;
    c->nreplies = 0;
    return rc;
}

/* Queue a simple reply (a structured chunk for a READ on a -S connection), plus READ data: from the memory export at offset with -m, else from the zero buffer. */
int queue_reply(struct conn *c, uint64_t cookie_be, uint32_t error, uint32_t data_len, uint64_t offset, int is_read)
{
    int need = 1 + (mem ? 1 : (int)((data_len + ZERO_CHUNK - 1) / ZERO_CHUNK));
    if (c->niov + need > MAX_IOV && flush_batch(c)) return -1;
    unsigned char *r = c->replies[c->nreplies++].bytes;
    uint32_t be32;
    if (c->structured && is_read) {    /* one chunk: OFFSET_DATA with the data, or ERROR with no message */
        uint16_t flags = htobe16(REPLY_FLAG_DONE), type = htobe16(error ? REPLY_TYPE_ERROR : REPLY_TYPE_OFFSET_DATA);
        uint64_t offset_be = htobe64(offset);
        be32 = htobe32(STRUCTURED_MAGIC); memcpy(r, &be32, 4);
        memcpy(r + 4, &flags, 2); memcpy(r + 6, &type, 2);
        memcpy(r + 8, &cookie_be, 8);
        be32 = htobe32(error ? 6 : 8 + data_len); memcpy(r + 16, &be32, 4);
        if (error) {
            be32 = htobe32(error); memcpy(r + 20, &be32, 4);
            memset(r + 24, 0, 2);      /* message length 0 */
            c->iov[c->niov++] = (struct iovec){ r, 26 };
        } else {
            memcpy(r + 20, &offset_be, 8);
            c->iov[c->niov++] = (struct iovec){ r, 28 };
        }
    } else {
        be32 = htobe32(SIMPLE_REPLY_MAGIC); memcpy(r, &be32, 4);
        be32 = htobe32(error); memcpy(r + 4, &be32, 4);
        memcpy(r + 8, &cookie_be, 8);  /* echoed as the client sent it: no byte swapping */
        c->iov[c->niov++] = (struct iovec){ r, 16 };
    }
    if (mem && data_len > 0) {
        c->iov[c->niov++] = (struct iovec){ mem + offset, data_len };
        return 0;
    }
    while (data_len > 0) {
        uint32_t n = data_len < ZERO_CHUNK ? data_len : ZERO_CHUNK;
        c->iov[c->niov++] = (struct iovec){ zeroes, n };
        data_len -= n;
    }
    return 0;
}

static void serve(struct conn *c)
{
    size_t len = 0;              /* bytes held in c->buf */
    uint64_t skip = 0;           /* WRITE payload bytes still to receive and drop */
    uint64_t write_cookie = 0;   /* the WRITE whose payload is being dropped */
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + len, RECV_BUF - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        len += (size_t)n;
        size_t p = 0;
        for (;;) {
            if (skip > 0) {
                size_t take = len - p < skip ? len - p : (size_t)skip;
                p += take; skip -= take;
                if (skip > 0) break;
                if (queue_reply(c, write_cookie, 0, 0, 0, 0)) return;
            }
            if (len - p < REQ_SIZE) break;
            struct request q;
            decode_request(c->buf + p, &q);
            if (q.magic != REQUEST_MAGIC) return;
            uint16_t type = q.type; uint32_t length = q.length; uint64_t cookie = q.cookie_be, offset = q.offset;
            p += REQ_SIZE;
            int bad = offset > export_size || length > export_size - offset;
            switch (type) {
            case CMD_READ:
                if (queue_reply(c, cookie, bad ? EINVAL_NBD : 0, bad ? 0 : length, offset, 1)) return;
                break;
            case CMD_WRITE:            /* reply once the payload has been received */
                if (mem && !bad && staged) {   /* stage the whole payload, then copy it into place */
                    if (!c->stage && !(c->stage = malloc(MAX_STAGE))) return;
                    if (length > MAX_STAGE) return;
                    size_t have = len - p < length ? len - p : length;
                    memcpy(c->stage, c->buf + p, have);
                    p += have;
                    if (have < length && read_full(c->fd, c->stage + have, length - have)) return;
                    if (pwrite_fd >= 0) {
                        for (size_t done = 0; done < length;) {
                            ssize_t n = pwrite(pwrite_fd, c->stage + done, length - done, (off_t)(offset + done));
                            if (n <= 0) return;
                            done += (size_t)n;
                        }
                    } else {
                        memcpy(mem + offset, c->stage, length);
                    }
                    if (queue_reply(c, cookie, 0, 0, 0, 0)) return;
                    break;
                }
                if (mem && !bad) {     /* copy what came with the headers, receive the rest in place */
                    size_t have = len - p < length ? len - p : length;
                    memcpy(mem + offset, c->buf + p, have);
                    p += have;
                    if (have < length && read_full(c->fd, mem + offset + have, length - have)) return;
                    if (queue_reply(c, cookie, 0, 0, 0, 0)) return;
                    break;
                }
                skip = length; write_cookie = cookie;
                if (skip == 0 && queue_reply(c, cookie, 0, 0, 0, 0)) return;
                break;
            case CMD_DISC:
                flush_batch(c);
                return;
            default:                   /* FLUSH, TRIM, CACHE, WRITE_ZEROES, BLOCK_STATUS: nothing to do */
                if (queue_reply(c, cookie, 0, 0, 0, 0)) return;
            }
        }
        if (flush_batch(c)) return;    /* one sendmsg for everything this recv() brought in */
        memmove(c->buf, c->buf + p, len - p);
        len -= p;
    }
}

static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    if (handshake(c) == 0) { if (direct_fd >= 0) { if (split_threads) serve_split(c); else serve_direct(c); } else serve(c); }
    close(c->fd);
    free(c->buf);
    free(c->stage);
    free(c->replies);
    free(c);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: nbd-floor -s SIZE_BYTES [(-m | -M FILE [-P]) [-t] [-S] | -f FILE [-v] | -F FILE] (-U SOCKET_PATH | -p PORT [-b ADDR])\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *addr = "127.0.0.1";
    const char *mapped = NULL;
    int port = -1, opt, lfd, one = 1, use_mem = 0;
    while ((opt = getopt(argc, argv, "s:mM:tPSf:F:vU:p:b:")) != -1) {
        switch (opt) {
        case 'm': use_mem = 1; break;
        case 'M': use_mem = 1; mapped = optarg; break;
        case 'v': verbose = 1; break;
        case 't': staged = 1; break;
        case 'P': use_pwrite = 1; break;
        case 'S': structured_ok = 1; break;
        case 'F':
            split_threads = 1;
            /* fall through */
        case 'f':
            direct_fd = open(optarg, O_RDWR | O_DIRECT);
            if (direct_fd < 0) { perror(optarg); return 1; }
            break;
        case 's': export_size = strtoull(optarg, NULL, 0); break;
        case 'U': path = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'b': addr = optarg; break;
        default: usage();
        }
    }
    if (export_size == 0 || (!path) == (port < 0) || (structured_ok && direct_fd >= 0)) usage();
    if (use_pwrite && (!mapped || !staged)) usage();   /* -P only makes sense with -M FILE -t */
    signal(SIGPIPE, SIG_IGN);
    if (mapped) {              /* -M: the page cache of FILE is the export */
        int fd = open(mapped, O_RDWR);
        if (fd < 0) { perror(mapped); return 1; }
        mem = mmap(NULL, export_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (use_pwrite) pwrite_fd = fd; else close(fd);
        if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    } else if (use_mem) {
        mem = mmap(NULL, export_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    }
    if (path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof a.sun_path) usage();
        strcpy(a.sun_path, path);
        unlink(path);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) usage();
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
    }
    if (listen(lfd, 64)) { perror("listen"); return 1; }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) { if (errno == EINTR) continue; perror("accept"); return 1; }
        if (!path) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->buf = malloc(RECV_BUF);
        c->replies = malloc((RECV_BUF / REQ_SIZE + 2) * sizeof *c->replies);
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (!c->buf || !c->replies || pthread_create(&t, &at, conn_thread, c)) {
            close(fd); free(c->buf); free(c->replies); free(c);
        }
        pthread_attr_destroy(&at);
    }
}
