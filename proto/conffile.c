/*
 * --config files, parsed by inih.
 *
 * Why inih and not libconfig: a flag is "--key value", and inih's format is
 * "key = value", so every flag is a key as it is, repeatable ones by
 * repeating the line, with no quoting or semicolons to learn; and it is
 * small and plain C.  libconfig's typed values and nested groups would
 * have no flag to map to.
 *
 * inih tells the handler no line number in Debian's build, so the reader
 * given to ini_parse_stream counts them: inih calls the handler for a line
 * right after reading it, so the count is that line's.  The reader also
 * refuses a line longer than inih's buffer, which inih would silently cut.
 */
#include "proto/conffile.h"

#include "codec/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CF_MAX (1u << 20)

struct cf_state {
    const char *path;
    const char *text, *pos, *end;
    unsigned line;
    tt_conffile_key on_key;
    void *ud;
    char *err;
    size_t errlen;
    int failed;
};

static void cf_fail(struct cf_state *st, const char *key, const char *why)
{
    if (st->failed)
        return; /* the first error is the one to fix */
    st->failed = 1;
    if (key)
        snprintf(st->err, st->errlen, "%s:%u: key '%s': %s", st->path, st->line, key, why);
    else
        snprintf(st->err, st->errlen, "%s:%u: %s", st->path, st->line, why);
}

static char *cf_reader(char *str, int num, void *stream)
{
    struct cf_state *st = stream;
    if (st->pos >= st->end || st->failed)
        return NULL;
    const char *nl = memchr(st->pos, '\n', (size_t)(st->end - st->pos));
    size_t n = nl ? (size_t)(nl - st->pos) + 1 : (size_t)(st->end - st->pos);
    st->line++;
    if (n + 1 > (size_t)num) {
        char why[96];
        snprintf(why, sizeof(why), "line longer than %d characters", num - 2);
        cf_fail(st, NULL, why);
        return NULL;
    }
    memcpy(str, st->pos, n);
    str[n] = 0;
    st->pos += n;
    return str;
}

static int cf_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cf_state *st = user;
    if (st->failed)
        return 1;
    if (section && *section) {
        cf_fail(st, name, "sections ([...]) are not used: every key is a flag's name");
        return 0;
    }
    char why[1024] = "";
    if (st->on_key(st->ud, name, value ? value : "", why, sizeof(why)) < 0) {
        cf_fail(st, name, why[0] ? why : "not accepted");
        return 0;
    }
    return 1;
}

int tt_conffile_read(const char *path, tt_conffile_key on_key, void *ud, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > CF_MAX) {
        snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
        close(fd);
        return -1;
    }
    char *text = tt_mem_alloc((size_t)sb.st_size + 1);
    if (!text) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, text + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    text[got] = 0;
    struct cf_state st = {
        .path = path, .text = text, .pos = text, .end = text + got,
        .on_key = on_key, .ud = ud, .err = err, .errlen = errlen,
    };
    if (memchr(text, 0, got)) {
        snprintf(err, errlen, "%s: holds a NUL byte (not a text file)", path);
        tt_mem_free(text);
        return -1;
    }
    int rc = ini_parse_stream(cf_reader, &st, cf_handler, &st);
    if (rc > 0 && !st.failed) {
        /* inih's own refusal: a line with neither '=' nor ':' nor [. */
        st.line = (unsigned)rc;
        cf_fail(&st, NULL, "not 'key = value'");
    } else if (rc < 0 && !st.failed) {
        snprintf(err, errlen, "%s: %s", path, rc == -2 ? "out of memory" : "cannot be read");
        st.failed = 1;
    }
    tt_mem_free(text);
    return st.failed ? -1 : 0;
}
