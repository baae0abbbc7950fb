/*
 * nbdmem: an NBD server that behaves like a disk with a volatile write
 * cache, for the power-cut test (scripts/powercut).
 *
 *	nbdmem -i IMAGE -u SOCKET [-k PIDFILE] [-m drop|subset|all] [-s SEED]
 *
 * It serves the file IMAGE (a multiple of 4 KiB) to one client, qemu, on
 * the Unix socket SOCKET, speaking the fixed newstyle handshake
 * (NBD_OPT_EXPORT_NAME, NBD_OPT_INFO, NBD_OPT_GO) and simple replies.
 *
 * Writes are not written to IMAGE: they go to an overlay in memory, in
 * 4 KiB blocks (a disk's physical sector: a block is written whole or not
 * at all, never torn).  Only NBD_CMD_FLUSH, or a write with NBD_CMD_FLAG_FUA
 * for its own blocks, moves blocks to IMAGE and fdatasync()s it before the
 * reply, which is the guarantee a real disk gives and no more.  Reads see
 * the overlay.
 *
 * The power cut.  When the client goes away without NBD_CMD_DISC (qemu
 * killed with SIGKILL) or nbdmem gets SIGTERM, the overlay is what the disk
 * had in its cache: with -m drop (the default) all of it is lost, with
 * -m subset each block independently reaches IMAGE or not (a cache that
 * wrote back some of its blocks, in any order), with -m all everything is
 * kept.  A clean NBD_CMD_DISC keeps everything, as a disk that stays powered
 * does.
 *
 * SIGUSR1 arms a cut at the worst moment: the next NBD_CMD_FLUSH that
 * finds unflushed blocks is not carried out; nbdmem sends SIGKILL to the
 * process whose pid is in PIDFILE (qemu's -pidfile) and cuts at once, so the
 * guest has written and is waiting for its flush when the power goes.
 *
 * At exit one line on stderr says what happened, for the driver's log:
 *	nbdmem: cut at flush (subset): 37 unflushed blocks, 12 applied, 25 lost; 412 writes, 96 flushes
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <endian.h>

#define BLK			4096
#define MAX_REQ			(32u << 20)	/* qemu's largest request */
#define MAX_OPT			4096

#define NBD_MAGIC		0x4e42444d41474943ULL	/* "NBDMAGIC" */
#define NBD_IHAVEOPT		0x49484156454f5054ULL	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ULL
#define NBD_REQ_MAGIC		0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u

#define NBD_FLAG_FIXED_NEWSTYLE	(1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
#define NBD_FLAG_C_NO_ZEROES	(1u << 1)

#define NBD_FLAG_HAS_FLAGS	(1u << 0)
#define NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NBD_FLAG_SEND_FUA	(1u << 3)

#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7

#define NBD_REP_ACK		1
#define NBD_REP_INFO		3
#define NBD_REP_ERR_UNSUP	(0x80000000u | 1)
#define NBD_REP_ERR_INVALID	(0x80000000u | 3)
#define NBD_INFO_EXPORT		0

#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_FLAG_FUA	(1u << 0)

#define TFLAGS	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA)

enum cut_mode { CUT_DROP, CUT_SUBSET, CUT_ALL };
static const char *const cut_names[] = { "drop", "subset", "all" };

static volatile sig_atomic_t got_term, got_arm;

static int img = -1;
static uint64_t img_size, nblocks;
static unsigned char **overlay;		/* nblocks entries; NULL = clean */
static uint64_t ndirty, nwrites, nflushes;
static uint64_t rng_state;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_arm = 1;
	else
		got_term = 1;
}

/* splitmix64: a seed on the command line replays the same subset. */
static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * Read exactly len bytes.  0 on success, -1 on EOF or error: both mean the
 * client is gone.  EINTR is retried unless SIGTERM came, so an armed cut
 * (SIGUSR1) does not disturb a request half read.
 */
static int
read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR && !got_term)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
pread_full(void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pread(img, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
pwrite_full(const void *buf, size_t len, uint64_t off)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(img, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static void
put32(unsigned char *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void
put64(unsigned char *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint16_t
get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* Write block b of the overlay to the image and forget it. */
static int
apply_block(uint64_t b)
{
	if (overlay[b] == NULL)
		return 0;
	if (pwrite_full(overlay[b], BLK, b * BLK) < 0)
		return -1;
	free(overlay[b]);
	overlay[b] = NULL;
	ndirty--;
	return 0;
}

static void
drop_block(uint64_t b)
{
	free(overlay[b]);
	overlay[b] = NULL;
	ndirty--;
}

/* NBD_CMD_FLUSH: every unflushed block to the image, then to the disk. */
static int
flush_all(void)
{
	for (uint64_t b = 0; b < nblocks && ndirty > 0; b++)
		if (apply_block(b) < 0)
			return -1;
	return fdatasync(img);
}

static int
do_read(unsigned char *buf, uint64_t off, uint32_t len)
{
	while (len > 0) {
		uint64_t b = off / BLK, in = off % BLK;
		uint32_t n = BLK - in < len ? (uint32_t)(BLK - in) : len;

		if (overlay[b] != NULL)
			memcpy(buf, overlay[b] + in, n);
		else if (pread_full(buf, n, off) < 0)
			return -1;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A write lands in the overlay.  A partial block is first filled from what
 * the disk would return for it, so the block that may reach the image at
 * the cut is whole.  With FUA its blocks go to the image now.
 */
static int
do_write(const unsigned char *buf, uint64_t off, uint32_t len, bool fua)
{
	uint64_t first = off / BLK, last = (off + len - 1) / BLK;

	while (len > 0) {
		uint64_t b = off / BLK, in = off % BLK;
		uint32_t n = BLK - in < len ? (uint32_t)(BLK - in) : len;

		if (overlay[b] == NULL) {
			overlay[b] = malloc(BLK);
			if (overlay[b] == NULL)
				return -1;
			if (n < BLK && pread_full(overlay[b], BLK, b * BLK) < 0) {
				free(overlay[b]);
				overlay[b] = NULL;
				return -1;
			}
			ndirty++;
		}
		memcpy(overlay[b] + in, buf, n);
		buf += n;
		off += n;
		len -= n;
	}
	nwrites++;
	if (!fua)
		return 0;
	for (uint64_t b = first; b <= last; b++)
		if (apply_block(b) < 0)
			return -1;
	return fdatasync(img);
}

static int
opt_reply(int fd, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	unsigned char h[20];

	put64(h, NBD_REP_MAGIC);
	put32(h + 8, opt);
	put32(h + 12, type);
	put32(h + 16, len);
	if (write_full(fd, h, sizeof(h)) < 0)
		return -1;
	return len > 0 ? write_full(fd, data, len) : 0;
}

/*
 * The handshake.  1 when the client is ready for transmission, 0 when it
 * aborted politely, -1 when it broke off.
 */
static int
handshake(int fd)
{
	unsigned char h[18], opt[MAX_OPT];
	uint32_t cflags;

	put64(h, NBD_MAGIC);
	put64(h + 8, NBD_IHAVEOPT);
	h[16] = 0;
	h[17] = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;
	if (write_full(fd, h, 18) < 0 || read_full(fd, h, 4) < 0)
		return -1;
	cflags = get32(h);
	for (;;) {
		uint32_t o, len;

		if (read_full(fd, h, 16) < 0 || get64(h) != NBD_IHAVEOPT)
			return -1;
		o = get32(h + 8);
		len = get32(h + 12);
		if (len > sizeof(opt))
			return -1;
		if (len > 0 && read_full(fd, opt, len) < 0)
			return -1;
		switch (o) {
		case NBD_OPT_EXPORT_NAME: {
			unsigned char r[10 + 124] = { 0 };

			put64(r, img_size);
			r[8] = 0;
			r[9] = TFLAGS;
			return write_full(fd, r, (cflags & NBD_FLAG_C_NO_ZEROES) ? 10 : sizeof(r))
			    < 0 ? -1 : 1;
		}
		case NBD_OPT_INFO:
		case NBD_OPT_GO: {
			unsigned char info[12];
			uint32_t nlen = len >= 6 ? get32(opt) : 0;

			/* Name length, name, number of info requests, the
			 * requests.  Any export name will do: there is one
			 * disk. */
			if (len < 6 || nlen > len - 6 ||
			    len != 6 + nlen + 2 * (uint32_t)get16(opt + 4 + nlen)) {
				if (opt_reply(fd, o, NBD_REP_ERR_INVALID, NULL, 0) < 0)
					return -1;
				break;
			}
			info[0] = 0;
			info[1] = NBD_INFO_EXPORT;
			put64(info + 2, img_size);
			info[10] = 0;
			info[11] = TFLAGS;
			if (opt_reply(fd, o, NBD_REP_INFO, info, sizeof(info)) < 0 ||
			    opt_reply(fd, o, NBD_REP_ACK, NULL, 0) < 0)
				return -1;
			if (o == NBD_OPT_GO)
				return 1;
			break;
		}
		case NBD_OPT_ABORT:
			opt_reply(fd, o, NBD_REP_ACK, NULL, 0);
			return 0;
		default:
			/* Structured replies, meta contexts, TLS: not offered.
			 * qemu carries on with simple replies. */
			if (opt_reply(fd, o, NBD_REP_ERR_UNSUP, NULL, 0) < 0)
				return -1;
			break;
		}
	}
}

static int
reply(int fd, uint64_t handle, uint32_t err, const void *data, uint32_t len)
{
	unsigned char r[16];

	put32(r, NBD_SIMPLE_REPLY_MAGIC);
	put32(r + 4, err);
	put64(r + 8, handle);
	if (write_full(fd, r, sizeof(r)) < 0)
		return -1;
	return len > 0 ? write_full(fd, data, len) : 0;
}

static void
kill_pidfile(const char *pidfile)
{
	FILE *f;
	long pid = 0;

	if (pidfile == NULL)
		return;
	f = fopen(pidfile, "r");
	if (f == NULL) {
		fprintf(stderr, "nbdmem: %s: %s\n", pidfile, strerror(errno));
		return;
	}
	if (fscanf(f, "%ld", &pid) == 1 && pid > 1)
		kill((pid_t)pid, SIGKILL);
	else
		fprintf(stderr, "nbdmem: %s: no pid in it\n", pidfile);
	fclose(f);
}

enum end { END_DISC, END_EOF, END_FLUSH, END_SIGNAL, END_ERROR };
static const char *const end_names[] = { "disconnect", "eof", "flush", "signal", "error" };

/*
 * The transmission phase, until the client leaves or the power goes.
 * Requests are served one at a time in the order they arrive; NBD allows
 * replies in any order, and serial is one of them.
 */
static enum end
serve(int fd, unsigned char *buf, const char *pidfile)
{
	unsigned char h[28];

	for (;;) {
		uint16_t cflags, type;
		uint64_t handle, off;
		uint32_t len, err = 0;
		bool in_range;

		if (got_term)
			return END_SIGNAL;
		if (read_full(fd, h, sizeof(h)) < 0)
			return got_term ? END_SIGNAL : END_EOF;
		if (get32(h) != NBD_REQ_MAGIC) {
			fprintf(stderr, "nbdmem: bad request magic\n");
			return END_ERROR;
		}
		cflags = get16(h + 4);
		type = get16(h + 6);
		handle = get64(h + 8);
		off = get64(h + 16);
		len = get32(h + 24);
		in_range = off <= img_size && len <= img_size - off;

		switch (type) {
		case NBD_CMD_READ:
			if (len > MAX_REQ || !in_range)
				err = EINVAL;
			else if (do_read(buf, off, len) < 0)
				err = EIO;
			if (reply(fd, handle, err, buf, err ? 0 : len) < 0)
				return END_EOF;
			break;
		case NBD_CMD_WRITE:
			if (len > MAX_REQ) {
				fprintf(stderr, "nbdmem: write of %" PRIu32 " bytes\n", len);
				return END_ERROR;
			}
			if (read_full(fd, buf, len) < 0)
				return got_term ? END_SIGNAL : END_EOF;
			if (!in_range)
				err = EINVAL;
			else if (len > 0 && do_write(buf, off, len, cflags & NBD_CMD_FLAG_FUA) < 0)
				err = EIO;
			if (reply(fd, handle, err, NULL, 0) < 0)
				return END_EOF;
			break;
		case NBD_CMD_FLUSH:
			if (got_arm && ndirty > 0) {
				kill_pidfile(pidfile);
				return END_FLUSH;
			}
			nflushes++;
			if (flush_all() < 0)
				err = EIO;
			if (reply(fd, handle, err, NULL, 0) < 0)
				return END_EOF;
			break;
		case NBD_CMD_DISC:
			return END_DISC;
		case NBD_CMD_TRIM:
			/* Not offered; a no-op is a valid trim anyway. */
			if (reply(fd, handle, 0, NULL, 0) < 0)
				return END_EOF;
			break;
		default:
			if (reply(fd, handle, EINVAL, NULL, 0) < 0)
				return END_EOF;
			break;
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: nbdmem -i IMAGE -u SOCKET [-k PIDFILE] "
	    "[-m drop|subset|all] [-s SEED]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *image = NULL, *sockpath = NULL, *pidfile = NULL;
	enum cut_mode mode = CUT_DROP;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sigaction sa = { .sa_handler = on_signal };
	struct stat st;
	unsigned char *buf;
	uint64_t unflushed, applied = 0, lost = 0;
	enum end end = END_EOF;
	int ch, ls, fd, hs;

	rng_state = (uint64_t)getpid() ^ (uint64_t)time(NULL);
	while ((ch = getopt(argc, argv, "i:u:k:m:s:")) != -1) {
		switch (ch) {
		case 'i':
			image = optarg;
			break;
		case 'u':
			sockpath = optarg;
			break;
		case 'k':
			pidfile = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "drop") == 0)
				mode = CUT_DROP;
			else if (strcmp(optarg, "subset") == 0)
				mode = CUT_SUBSET;
			else if (strcmp(optarg, "all") == 0)
				mode = CUT_ALL;
			else
				usage();
			break;
		case 's':
			rng_state = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (image == NULL || sockpath == NULL || optind != argc)
		usage();
	if (strlen(sockpath) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "nbdmem: %s: socket path too long\n", sockpath);
		return 1;
	}

	img = open(image, O_RDWR);
	if (img < 0 || fstat(img, &st) < 0) {
		fprintf(stderr, "nbdmem: %s: %s\n", image, strerror(errno));
		return 1;
	}
	img_size = (uint64_t)st.st_size;
	if (img_size == 0 || img_size % BLK != 0) {
		fprintf(stderr, "nbdmem: %s: size %" PRIu64 " is not a multiple of %d\n",
		    image, img_size, BLK);
		return 1;
	}
	nblocks = img_size / BLK;
	overlay = calloc(nblocks, sizeof(*overlay));
	buf = malloc(MAX_REQ);
	if (overlay == NULL || buf == NULL) {
		fprintf(stderr, "nbdmem: out of memory\n");
		return 1;
	}

	/* No SA_RESTART: SIGTERM must break a blocked read. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sun.sun_path, sockpath);
	unlink(sockpath);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(ls, 1) < 0) {
		fprintf(stderr, "nbdmem: %s: %s\n", sockpath, strerror(errno));
		return 1;
	}
	do
		fd = accept(ls, NULL, NULL);
	while (fd < 0 && errno == EINTR && !got_term);
	close(ls);
	unlink(sockpath);
	if (fd < 0) {
		fprintf(stderr, "nbdmem: no client came\n");
		return got_term ? 0 : 1;
	}

	hs = handshake(fd);
	if (hs > 0)
		end = serve(fd, buf, pidfile);
	else
		end = hs == 0 ? END_DISC : END_EOF;
	close(fd);

	/* The power goes (or, after a disconnect, the disk writes back). */
	unflushed = ndirty;
	if (end == END_DISC)
		mode = CUT_ALL;
	for (uint64_t b = 0; b < nblocks && ndirty > 0; b++) {
		if (overlay[b] == NULL)
			continue;
		if (mode == CUT_ALL || (mode == CUT_SUBSET && (rng_next() & 1))) {
			if (apply_block(b) < 0) {
				fprintf(stderr, "nbdmem: writing %s: %s\n", image, strerror(errno));
				return 1;
			}
			applied++;
		} else {
			drop_block(b);
			lost++;
		}
	}
	if (fsync(img) < 0) {
		fprintf(stderr, "nbdmem: fsync %s: %s\n", image, strerror(errno));
		return 1;
	}
	fprintf(stderr, "nbdmem: cut at %s (%s): %" PRIu64 " unflushed blocks, %" PRIu64
	    " applied, %" PRIu64 " lost; %" PRIu64 " writes, %" PRIu64 " flushes\n",
	    end_names[end], cut_names[mode], unflushed, applied, lost, nwrites, nflushes);
	free(buf);
	free(overlay);
	close(img);
	return end == END_ERROR ? 1 : 0;
}
