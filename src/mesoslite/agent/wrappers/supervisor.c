#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* mesoslite task supervisor: NAME (an abstract unix socket name). See agent/supervisor.py.
   Agent -> us: frames (u32 little-endian length, then NUL-terminated fields):
     L seq tag exit_log file cwd stdout stderr run_as ncg cg... argc argv... envc env...
     K pid sig      A pid      T seq tag      H
   Us -> agent: lines  S seq pid | F seq errno step | X pid code | A pid live | T seq pid |
     H pid version
   Version 2 (issue 15, agentcost): we make the sandbox (cwd) before the output files (step 6
   on failure), and SIGKILL what is left in a task's cgroups before its X line. Version 3: T
   finds a live task by its launch's tag (an agent killed before it recorded the pid). */

#define VERSION 3
typedef struct { char *tag; char *log; char **cgs; } child_t;
static child_t **kids; /* indexed by pid; only our live (or zombie, unreaped) children */
static long pid_cap, nkids;
static int client = -1, devnull;
static char *out; static size_t out_len, out_cap;

static void emit(const char *fmt, long a, long b, long c) {
  if (client < 0) return;
  if (out_cap - out_len < 96) {
    out_cap = out_cap ? out_cap * 2 : 65536;
    out = realloc(out, out_cap);
    if (!out) _exit(70);
  }
  out_len += snprintf(out + out_len, out_cap - out_len, fmt, a, b, c);
}

static void flush_out(void) {
  size_t off = 0;
  while (client >= 0 && off < out_len) {
    ssize_t n = send(client, out + off, out_len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { close(client); client = -1; break; }
    off += n;
  }
  out_len = 0;
}

static int switch_user(const char *spec) {
  char *end;
  long uid = strtol(spec, &end, 10), gid = strtol(end, &end, 10);
  gid_t groups[256];
  size_t n = 0;
  while ((*end == ' ' || *end == ',') && n < 256) {
    char *next;
    long g = strtol(end + 1, &next, 10);
    if (next == end + 1) break;
    groups[n++] = (gid_t)g;
    end = next;
  }
  if (uid <= 0 || gid < 0) { errno = EINVAL; return -1; }
  if (setgroups(n, groups) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) return -1;
  return 0;
}

/* The launch request's fields, pointing into the frame. */
typedef struct {
  char *seq, *tag, *log, *file, *cwd, *out, *err, *run_as;
  char **cgs, **argv, **envp;
} launch_t;

static char *next_field(char **p, char *end) {
  if (*p >= end) return NULL;
  char *f = *p;
  char *z = memchr(f, 0, end - f);
  if (!z) return NULL;
  *p = z + 1;
  return f;
}

static char **field_list(char **p, char *end) {
  char *c = next_field(p, end);
  if (!c) return NULL;
  long n = strtol(c, NULL, 10);
  if (n < 0 || n > 1 << 20) return NULL;
  char **v = calloc(n + 1, sizeof *v);
  for (long i = 0; v && i < n; i++)
    if (!(v[i] = next_field(p, end))) { free(v); return NULL; }
  return v;
}

static void itoa_nl(long v, char *buf) {
  char tmp[24]; int n = 0;
  do { tmp[n++] = '0' + v % 10; v /= 10; } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = '\n'; buf[n + 1] = 0;
}

/* Join the cgroup whose `cgroup.procs` is `procs`. In cgroup v1, "0" written to the sibling
   `tasks` moves only the calling thread (all of a process not yet exec'd, as here), and the
   kernel then skips its global threadgroup lock, whose RCU grace period costs 5-15 ms on a
   quiet machine (issue 15: most of a `mesoslite run` after a pause). v2 has no `tasks`. */
static void join_cgroup(const char *procs, const char *pid) {
  static const char suffix[] = "cgroup.procs";
  char tasks[4096];
  size_t n = strlen(procs), s = sizeof suffix - 1;
  if (n >= s && n - s + sizeof "tasks" <= sizeof tasks && !strcmp(procs + n - s, suffix)) {
    memcpy(tasks, procs, n - s);
    memcpy(tasks + n - s, "tasks", sizeof "tasks");
    int fd = open(tasks, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t w = write(fd, "0\n", 2);
      close(fd);
      if (w == 2) return;
    }
  }
  int fd = open(procs, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd >= 0) { if (write(fd, pid, strlen(pid)) < 0) {} close(fd); }
}

/* The child of vfork: what the wrapper's child did. Sets err and step, and exits, on failure. */
static void child(launch_t *l, int fo, int fe, volatile int *err, volatile int *step) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  char pid[32];
  itoa_nl(getpid(), pid);
  for (char **c = l->cgs; *c; c++) join_cgroup(*c, pid);
  *step = 1;
  if (dup2(devnull, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) goto fail;
  *step = 2;
  if (chdir(l->cwd) < 0) goto fail;
  *step = 3;
  if (l->run_as[0] && switch_user(l->run_as) < 0) goto fail;
  *step = 4;
  execve(l->file, l->argv, l->envp);
fail:
  *err = errno ? errno : EINVAL;
  _exit(127);
}

/* mkdir -p of the directories above `path` (the framework's sandbox dir, once). */
static int make_parents(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  memcpy(buf, path, n + 1);
  for (char *s = buf + 1; (s = strchr(s, '/')); s++) {
    *s = 0;
    if (mkdir(buf, 0777) < 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  return 0;
}

/* The task's sandbox, as sandbox.py's make_sandbox: mode 0700, its user's if it has one.
   A sandbox of a task id used again is taken as it is (its parent is the agent's, so it
   cannot be a task's symlink; O_NOFOLLOW all the same). */
static int make_sandbox(const char *dir, long uid, long gid) {
  if (mkdir(dir, 0700) < 0) {
    if (errno == ENOENT) {
      if (make_parents(dir) < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST)) return -1;
    } else if (errno != EEXIST) {
      return -1;
    }
  } else if (uid < 0) {
    return 0; /* made now: 0700 less the umask, as Python's mkdir(mode=0o700) */
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fchmod(fd, 0700);
  if (rc == 0 && uid >= 0) rc = fchown(fd, (uid_t)uid, (gid_t)gid);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

static void launch(launch_t *l) {
  long seq = strtol(l->seq, NULL, 10);
  long uid = -1, gid = -1;
  if (l->run_as[0]) {
    char *end;
    uid = strtol(l->run_as, &end, 10);
    gid = strtol(end, NULL, 10);
  }
  if (make_sandbox(l->cwd, uid, gid) < 0) {
    emit("F %ld %ld %ld\n", seq, errno, 6);
    return;
  }
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
  int fo = open(l->out, flags, 0644), fe = fo < 0 ? -1 : open(l->err, flags, 0644);
  if (fo < 0 || fe < 0) {
    emit("F %ld %ld %ld\n", seq, errno, 5);
    if (fo >= 0) close(fo);
    return;
  }
  if (uid >= 0) {
    if (fchown(fo, uid, gid) < 0 || fchown(fe, uid, gid) < 0) {}
  }
  volatile int err = 0, step = 0;
  pid_t pid = vfork();
  if (pid == 0) child(l, fo, fe, &err, &step);
  close(fo);
  close(fe);
  if (pid < 0 || err) {
    if (pid > 0) while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    emit("F %ld %ld %ld\n", seq, pid < 0 ? errno : err, pid < 0 ? 0 : step);
    return;
  }
  if (pid >= pid_cap) { /* cannot track it: end it */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    emit("F %ld %ld %ld\n", seq, ENOMEM, 0);
    return;
  }
  child_t *c = malloc(sizeof *c);
  if (!c || !(c->tag = strdup(l->tag)) || !(c->log = strdup(l->log))) _exit(70);
  long ncg = 0;
  while (l->cgs[ncg]) ncg++;
  if (!(c->cgs = calloc(ncg + 1, sizeof *c->cgs))) _exit(70);
  for (long i = 0; i < ncg; i++)
    if (!(c->cgs[i] = strdup(l->cgs[i]))) _exit(70);
  kids[pid] = c;
  nkids++;
  emit("S %ld %ld\n", seq, pid, 0);
}

static void handle_frame(char *p, char *end) {
  char *cmd = next_field(&p, end);
  if (!cmd) return;
  if (cmd[0] == 'L') {
    launch_t l = {0};
    char **fields[] = {&l.seq, &l.tag, &l.log, &l.file, &l.cwd, &l.out, &l.err, &l.run_as};
    for (int i = 0; i < 8; i++)
      if (!(*fields[i] = next_field(&p, end))) return;
    if ((l.cgs = field_list(&p, end)) && (l.argv = field_list(&p, end)) &&
        (l.envp = field_list(&p, end)) && l.argv[0])
      launch(&l);
    else
      emit("F %ld %ld %ld\n", strtol(l.seq, NULL, 10), EINVAL, 0);
    free(l.cgs); free(l.argv); free(l.envp);
  } else if (cmd[0] == 'K' || cmd[0] == 'A') {
    char *a = next_field(&p, end), *b = next_field(&p, end);
    long pid = a ? strtol(a, NULL, 10) : 0;
    int ours = pid > 0 && pid < pid_cap && kids[pid];
    /* Ours means not reaped yet: the pid and its group cannot name anybody else. */
    if (cmd[0] == 'K' && ours && b) killpg(pid, (int)strtol(b, NULL, 10));
    if (cmd[0] == 'A') emit("A %ld %ld\n", pid, ours, 0);
  } else if (cmd[0] == 'T') { /* T seq tag: our unreaped child launched with that tag, or 0 */
    char *a = next_field(&p, end), *b = next_field(&p, end);
    long found = 0;
    for (long pid = 1; b && pid < pid_cap && !found; pid++)
      if (kids[pid] && !strcmp(kids[pid]->tag, b)) found = pid;
    emit("T %ld %ld\n", a ? strtol(a, NULL, 10) : 0, found, 0);
  } else if (cmd[0] == 'H') {
    emit("H %ld %ld\n", getpid(), VERSION, 0);
  }
}

static void append_exit(child_t *c, long code) {
  if (!c->log[0]) return;
  char line[128];
  /* One O_APPEND write: lines never mix with other writers. */
  int n = snprintf(line, sizeof line, "%.64s %ld\n", c->tag, code);
  int fd = open(c->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) { if (write(fd, line, n) < 0) {} close(fd); }
}

/* SIGKILL every process left in the task's cgroups (what left its group: a new session). */
static void kill_cgroup_members(char **cgs) {
  char buf[65536];
  for (char **c = cgs; *c; c++) {
    int fd = open(*c, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    size_t have = 0;
    ssize_t n;
    while ((n = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
      have += n;
      buf[have] = 0;
      char *p = buf, *last = strrchr(buf, '\n'); /* whole lines only; the rest waits */
      if (!last) { have = 0; continue; } /* no line in 64 KiB: not a cgroup.procs */
      for (char *end; p < last; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0) kill((pid_t)pid, SIGKILL);
      }
      have = strlen(last + 1);
      memmove(buf, last + 1, have);
    }
    close(fd);
  }
}

static void reap(void) {
  for (;;) {
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) return;
    pid_t pid = si.si_pid;
    child_t *c = pid < pid_cap ? kids[pid] : NULL;
    if (c) {
      long code = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
      killpg(pid, SIGKILL); /* the leader is a zombie: the group is still its own */
      kill_cgroup_members(c->cgs);
      append_exit(c, code); /* on disk before anybody can see the pid gone */
      emit("X %ld %ld\n", pid, code, 0);
      kids[pid] = NULL;
      nkids--;
      for (char **g = c->cgs; *g; g++) free(*g);
      free(c->cgs); free(c->tag); free(c->log); free(c);
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  }
}

static char *in; static size_t in_len, in_cap;

static void read_client(void) {
  if (in_cap - in_len < 65536) {
    in_cap = in_cap ? in_cap * 2 : 1 << 20;
    in = realloc(in, in_cap);
    if (!in) _exit(70);
  }
  ssize_t n = recv(client, in + in_len, in_cap - in_len, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) { close(client); client = -1; in_len = 0; return; }
  in_len += n;
  size_t off = 0;
  while (in_len - off >= 4) {
    unsigned char *h = (unsigned char *)in + off;
    size_t len = h[0] | h[1] << 8 | h[2] << 16 | (size_t)h[3] << 24;
    if (in_len - off - 4 < len) break;
    handle_frame(in + off + 4, in + off + 4 + len);
    off += 4 + len;
  }
  memmove(in, in + off, in_len - off);
  in_len -= off;
}

static void accept_client(int lsock) {
  int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
    close(c); /* only our own user may launch through us */
    return;
  }
  if (client >= 0) close(client); /* a new agent replaces the last one */
  client = c;
  in_len = out_len = 0;
}

int main(int argc, char **argv) {
  if (argc != 2 || strlen(argv[1]) > 100) { fputs("usage: supervisor NAME\n", stderr); return 2; }
  FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
  if (!f || fscanf(f, "%ld", &pid_cap) != 1) pid_cap = 4194304;
  if (f) fclose(f);
  pid_cap++;
  kids = calloc(pid_cap, sizeof *kids);
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (!kids || devnull < 0 || sfd < 0) { perror("mesoslite supervisor"); return 1; }
  /* The agent waits for our parent, which exits once we listen (so that SO_PEERCRED,
     taken at listen(), names us, not it). */
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) { perror("mesoslite supervisor: pipe"); return 1; }
  pid_t p = fork();
  if (p < 0) { perror("mesoslite supervisor: fork"); return 1; }
  if (p > 0) {
    unsigned char rc = 1;
    close(ready[1]);
    if (read(ready[0], &rc, 1) < 1) rc = 1;
    _exit(rc);
  }
  close(ready[0]);
  setsid();
  if (chdir("/") < 0) {} /* hold no directory of the agent's busy; tasks chdir to theirs */
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path + 1, argv[1], strlen(argv[1]));
  socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(argv[1]);
  int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lsock < 0 || bind(lsock, (struct sockaddr *)&addr, alen) < 0 || listen(lsock, 8) < 0) {
    unsigned char rc = errno == EADDRINUSE ? 3 : 1;
    perror("mesoslite supervisor: cannot listen");
    if (write(ready[1], &rc, 1) < 0) {}
    return rc;
  }
  unsigned char ok = 0;
  if (write(ready[1], &ok, 1) < 0) {}
  close(ready[1]);
  dup2(devnull, 0);
  dup2(devnull, 1);
  int idle_ms = 10000, ever = 0;
  for (;;) {
    struct pollfd fds[3] = {{lsock, POLLIN, 0}, {sfd, POLLIN, 0}, {client, POLLIN, 0}};
    int n = poll(fds, client >= 0 ? 3 : 2, ever ? -1 : idle_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && !ever) return 0; /* nobody came */
    if (fds[1].revents) {
      struct signalfd_siginfo buf[16];
      while (read(sfd, buf, sizeof buf) > 0) {}
      reap();
    }
    if (client >= 0 && fds[2].revents) read_client();
    if (fds[0].revents) { accept_client(lsock); ever = 1; }
    flush_out();
    if (ever && client < 0 && nkids == 0) return 0; /* nothing left to watch for anybody */
  }
}
