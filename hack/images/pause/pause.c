/* pause: the process that holds a pod's namespaces while its containers come and go.
 *
 * It must do three things and nothing else: stay alive at almost no cost, exit 0 promptly
 * when the runtime stops the sandbox (SIGTERM or SIGINT), and, being PID 1 of the pod when
 * the PID namespace is shared, reap orphaned children so they do not pile up as zombies.
 * Built with `gcc -static` so the image needs no libc. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  /* Reap every child that has exited; more than one may be behind a single signal. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {0}, child = {0};
  stop.sa_handler = on_stop;
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGTERM, &stop, NULL) || sigaction(SIGINT, &stop, NULL) ||
      sigaction(SIGCHLD, &child, NULL)) {
    return 1;
  }
  for (;;) {
    pause(); /* returns after each handled signal; only on_stop ends the process */
  }
}
