/* The pod sandbox process of the test node (containerd's sandbox_image): holds the pod's
 * namespaces, reaps orphaned children (it is PID 1 when the pod shares its PID namespace) and
 * exits on SIGINT/SIGTERM. The same job as Kubernetes' build/pause/linux/pause.c, built here
 * because no registry is reachable from the test machine. Built static, so the image holds
 * nothing else. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
    (void)signo;
    _exit(0);
}

static void reap(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction on_stop = {.sa_handler = stop};
    struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
        sigaction(SIGCHLD, &on_child, NULL) < 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
