#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fputs("mesoslite wrapper: STATUS_FILE CGROUP_PROCS ARGV...\n", stderr);
    return 127;
  }
  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (char *p = strtok(argv[2], " "); p; p = strtok(NULL, " ")) {
    int fd = open(p, O_WRONLY | O_APPEND);
    if (fd >= 0) { if (write(fd, pid, strlen(pid)) < 0) {} close(fd); }
  }
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) signal(sigs[i], SIG_IGN);
  pid_t child = fork();
  if (child < 0) { perror("mesoslite: cannot fork"); return 127; }
  if (child == 0) {
    for (int i = 0; i < 3; i++) signal(sigs[i], SIG_DFL);
    execvp(argv[3], argv + 3);
    fprintf(stderr, "mesoslite: cannot execute %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
  int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  int code = sig ? -sig : WEXITSTATUS(st);
  if (argv[1][0]) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (f) { fprintf(f, "%d\n", code); fclose(f); rename(tmp, argv[1]); }
  }
  if (sig) { signal(sig, SIG_DFL); kill(getpid(), sig); return 128 + sig; }
  return code;
}
