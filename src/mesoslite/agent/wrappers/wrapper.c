#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* mesoslite task wrapper: EXIT_LOG TAG CGROUP_PROCS ARGV... (see agent/launcher.py). */

/* $MESOSLITE_RUN_AS="UID GID G1,G2,...": the wrapper stays root (it keeps the exit log
   out of the task's reach) and switches only the command it forks. */
static int switch_user(const char *spec) {
  char *end;
  long uid = strtol(spec, &end, 10);
  long gid = strtol(end, &end, 10);
  size_t n = 0, cap = 1;
  for (const char *p = end; *p; p++) cap += *p == ',';
  gid_t *groups = malloc(cap * sizeof *groups);
  if (!groups) return -1;
  while (*end == ' ' || *end == ',') {
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

/* Join the cgroup whose `cgroup.procs` is `procs`: "0" to the v1 sibling `tasks` moves this
   single-threaded process without the kernel's threadgroup lock (an RCU grace period, 5-15 ms
   on a quiet machine); v2 has no `tasks`, so there the pid goes to `cgroup.procs`. */
static void join_cgroup(const char *procs, const char *pid) {
  static const char suffix[] = "cgroup.procs";
  char tasks[4096];
  size_t n = strlen(procs), s = sizeof suffix - 1;
  if (n >= s && n - s + sizeof "tasks" <= sizeof tasks && !strcmp(procs + n - s, suffix)) {
    memcpy(tasks, procs, n - s);
    memcpy(tasks + n - s, "tasks", sizeof "tasks");
    int fd = open(tasks, O_WRONLY | O_APPEND);
    if (fd >= 0) {
      ssize_t w = write(fd, "0\n", 2);
      close(fd);
      if (w == 2) return;
    }
  }
  int fd = open(procs, O_WRONLY | O_APPEND);
  if (fd >= 0) { if (write(fd, pid, strlen(pid)) < 0) {} close(fd); }
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fputs("mesoslite wrapper: EXIT_LOG TAG CGROUP_PROCS ARGV...\n", stderr);
    return 127;
  }
  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (char *p = strtok(argv[3], " "); p; p = strtok(NULL, " ")) join_cgroup(p, pid);
  char *run_as = getenv("MESOSLITE_RUN_AS");
  if (run_as) { run_as = strdup(run_as); unsetenv("MESOSLITE_RUN_AS"); }
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) signal(sigs[i], SIG_IGN);
  pid_t child = fork();
  if (child < 0) { perror("mesoslite: cannot fork"); return 127; }
  if (child == 0) {
    for (int i = 0; i < 3; i++) signal(sigs[i], SIG_DFL);
    if (run_as && switch_user(run_as) < 0) {
      fprintf(stderr, "mesoslite: cannot switch to %s: %s\n", run_as, strerror(errno));
      _exit(127);
    }
    execvp(argv[4], argv + 4);
    fprintf(stderr, "mesoslite: cannot execute %s: %s\n", argv[4], strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
  int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  int code = sig ? -sig : WEXITSTATUS(st);
  if (argv[1][0]) {
    /* One O_APPEND write: lines of concurrent wrappers never mix. */
    char line[128];
    int n = snprintf(line, sizeof line, "%.64s %d\n", argv[2], code);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) { if (write(fd, line, n) < 0) {} close(fd); }
  }
  if (sig) { signal(sig, SIG_DFL); kill(getpid(), sig); return 128 + sig; }
  return code;
}
