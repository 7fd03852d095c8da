/*
 * fakemodem: an LD_PRELOAD test double for the modem-control lines of a serial port.
 *
 * Pseudo-terminals have no modem lines (TIOCMGET on a pty fails), so contact-closure drivers
 * (genericups) cannot be tested on one.  This shim sits between a driver and libc: it answers the
 * modem-line ioctls on terminal file descriptors from a small state file and records every change
 * the driver makes in a log file.  Everything above libc (the driver, pyserial, NUT's C code) runs
 * unchanged.
 *
 * Environment:
 *   FAKEMODEM_STATE  file naming the *input* lines that are high (the UPS side), e.g. "CTS DCD".
 *                    Tokens: CTS, DCD (or CD/CAR), RNG (or RI), DSR; anything else is ignored.
 *                    Re-read at every TIOCMGET; a missing file means all inputs low.  The token
 *                    EIO makes every modem-line call fail with EIO (an adapter that went away).
 *                    Without this variable the shim does nothing (every call goes to libc).
 *   FAKEMODEM_LOG    optional file; one line per event, appended with a single write():
 *                      <unix time> <pid> GET <bits hex> <high lines...>
 *                      <unix time> <pid> SET <how> <arg hex> DTR=<0|1> RTS=<0|1> ST=<0|1>
 *                      <unix time> <pid> BREAK on|off            (TIOCSBRK / TIOCCBRK)
 *                      <unix time> <pid> SENDBREAK <duration>    (tcsendbreak, TCSBRK, TCSBRKP)
 *                      <unix time> <pid> CLOSE                   (close() of a port we answered for)
 *                      <unix time> <pid> EXIT                    (normal process exit)
 *
 * The output lines (DTR, RTS, and the ST bit that some drivers put into TIOCMSET) live in the
 * process, starting high as the kernel raises DTR and RTS when a port is opened.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_MASK (TIOCM_DTR | TIOCM_RTS | TIOCM_ST)
#define MAX_FDS 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int outputs = TIOCM_DTR | TIOCM_RTS;
static unsigned char touched[MAX_FDS]; /* fds we answered a modem-line call for */
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
static int (*real_tcsendbreak)(int, int);

static const char *state_path(void) { return getenv("FAKEMODEM_STATE"); }

static void resolve(void)
{
    if (!real_ioctl)
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    if (!real_tcsendbreak)
        real_tcsendbreak = (int (*)(int, int))dlsym(RTLD_NEXT, "tcsendbreak");
}

static void log_event(const char *fmt, ...)
{
    const char *path = getenv("FAKEMODEM_LOG");
    char line[512];
    struct timespec ts;
    va_list ap;
    int n, fd;

    if (!path || !*path)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    n = snprintf(line, sizeof(line), "%lld.%06ld %d ", (long long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid());
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* nothing useful to do */
    }
    resolve();
    real_close(fd);
}

#define FAIL_EIO 0x10000

static int read_inputs(void)
{
    const char *path = state_path();
    char buf[256], *tok, *save = NULL;
    int bits = 0, fd;
    ssize_t n;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    resolve();
    real_close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (tok = strtok_r(buf, " \t\r\n,+", &save); tok; tok = strtok_r(NULL, " \t\r\n,+", &save)) {
        if (!strcasecmp(tok, "CTS"))
            bits |= TIOCM_CTS;
        else if (!strcasecmp(tok, "DCD") || !strcasecmp(tok, "CD") || !strcasecmp(tok, "CAR"))
            bits |= TIOCM_CAR;
        else if (!strcasecmp(tok, "RNG") || !strcasecmp(tok, "RI"))
            bits |= TIOCM_RNG;
        else if (!strcasecmp(tok, "DSR"))
            bits |= TIOCM_DSR;
        else if (!strcmp(tok, "EIO"))
            bits |= FAIL_EIO;
    }
    return bits;
}

static void describe(int bits, char *out, size_t size)
{
    static const struct { int bit; const char *name; } names[] = {
        {TIOCM_DTR, "DTR"}, {TIOCM_RTS, "RTS"}, {TIOCM_ST, "ST"}, {TIOCM_CTS, "CTS"},
        {TIOCM_CAR, "DCD"}, {TIOCM_RNG, "RNG"}, {TIOCM_DSR, "DSR"},
    };
    size_t i, used = 0;

    out[0] = '\0';
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (bits & names[i].bit)
            used += (size_t)snprintf(out + used, size - used, " %s", names[i].name);
}

static int is_managed(int fd) { return state_path() != NULL && fd >= 0 && isatty(fd); }

static void mark(int fd)
{
    if (fd >= 0 && fd < MAX_FDS)
        touched[fd] = 1;
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    char desc[64];

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    resolve();

    switch (request) {
    case TIOCMGET:
    case TIOCMSET:
    case TIOCMBIS:
    case TIOCMBIC:
    case TIOCSBRK:
    case TIOCCBRK:
    case TCSBRK:
    case TCSBRKP:
        if (is_managed(fd))
            break;
        /* fall through */
    default:
        return real_ioctl(fd, request, arg);
    }

    mark(fd);
    if (request == TIOCSBRK || request == TIOCCBRK) {
        log_event("BREAK %s", request == TIOCSBRK ? "on" : "off");
        return 0;
    }
    if (request == TCSBRK || request == TCSBRKP) {
        if (request == TCSBRK && (long)arg != 0) /* tcdrain */
            return 0;
        log_event("SENDBREAK %ld", (long)arg);
        return 0;
    }
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    pthread_mutex_lock(&lock);
    if (read_inputs() & FAIL_EIO) {
        pthread_mutex_unlock(&lock);
        log_event("FAIL %s", request == TIOCMGET ? "GET" : "SET");
        errno = EIO;
        return -1;
    }
    if (request == TIOCMGET) {
        int bits = (outputs & (TIOCM_DTR | TIOCM_RTS)) | read_inputs();
        *(int *)arg = bits;
        pthread_mutex_unlock(&lock);
        describe(bits, desc, sizeof(desc));
        log_event("GET %03x%s", bits, desc);
        return 0;
    } else {
        int value = *(int *)arg;
        const char *how = request == TIOCMSET ? "TIOCMSET" : request == TIOCMBIS ? "TIOCMBIS" : "TIOCMBIC";
        if (request == TIOCMSET)
            outputs = value & OUTPUT_MASK;
        else if (request == TIOCMBIS)
            outputs |= value & OUTPUT_MASK;
        else
            outputs &= ~(value & OUTPUT_MASK);
        value = *(int *)arg;
        log_event("SET %s %03x DTR=%d RTS=%d ST=%d", how, value, !!(outputs & TIOCM_DTR),
                  !!(outputs & TIOCM_RTS), !!(outputs & TIOCM_ST));
        pthread_mutex_unlock(&lock);
        return 0;
    }
}

int tcsendbreak(int fd, int duration)
{
    resolve();
    if (!is_managed(fd))
        return real_tcsendbreak(fd, duration);
    mark(fd);
    log_event("SENDBREAK %d", duration);
    return 0;
}

int close(int fd)
{
    resolve();
    if (fd >= 0 && fd < MAX_FDS && touched[fd]) {
        touched[fd] = 0;
        log_event("CLOSE");
    }
    return real_close(fd);
}

__attribute__((destructor)) static void fakemodem_exit(void)
{
    if (state_path() != NULL) {
        int i, any = 0;
        for (i = 0; i < MAX_FDS; i++)
            any |= touched[i];
        if (any)
            log_event("EXIT");
    }
}
