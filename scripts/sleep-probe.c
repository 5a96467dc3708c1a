/*
 * sleep-probe: how late does this machine wake a sleeping thread?
 *
 * It sleeps 850 µs with nanosleep(2) 5,000 times and prints the overshoot's
 * percentiles and how many wake-ups were more than 850 µs late. With "fifo" it
 * runs as SCHED_FIFO (lowest priority; needs CAP_SYS_NICE), as ratelab hammer's
 * pacer does. docs/hammer.md uses it to tell the host's noise from the generator's.
 *
 *   cc -O2 -o /tmp/sleep-probe scripts/sleep-probe.c
 *   /tmp/sleep-probe; /tmp/sleep-probe fifo
 *   redis-benchmark -q -n 2000000 -c 50 -t get & /tmp/sleep-probe; /tmp/sleep-probe fifo
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 5000
#define SLEEP_NS 850000L

static long now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int fifo = argc > 1 && strcmp(argv[1], "fifo") == 0;
	if (fifo) {
		struct sched_param p = {.sched_priority = 1};
		if (sched_setscheduler(0, SCHED_FIFO, &p) != 0) {
			perror("sched_setscheduler(SCHED_FIFO) (needs CAP_SYS_NICE)");
			return 1;
		}
	}
	static long over[N];
	for (int i = 0; i < N; i++) {
		struct timespec ts = {0, SLEEP_NS};
		long t0 = now_ns();
		nanosleep(&ts, NULL);
		over[i] = now_ns() - t0 - SLEEP_NS;
	}
	qsort(over, N, sizeof over[0], cmp);
	int late = 0;
	for (int i = 0; i < N; i++)
		late += over[i] > SLEEP_NS;
	printf("%s: overshoot p50 %ld µs, p99 %ld µs, p99.9 %ld µs, max %ld µs; %d of %d more than 850 µs late\n",
	       fifo ? "SCHED_FIFO" : "normal", over[N / 2] / 1000, over[N * 99 / 100] / 1000,
	       over[N * 999 / 1000] / 1000, over[N - 1] / 1000, late, N);
	return 0;
}
