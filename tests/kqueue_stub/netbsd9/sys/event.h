// Stand-in for NetBSD 9's <sys/event.h> (udata intptr_t, no EVFILT_USER: the pipe wake-up),
// for .ci/run's compile check of io/src/kqueue_poller.cpp. Not a kqueue: nothing runs against it.
#pragma once
#include <stdint.h>
#include <time.h>
struct kevent { uintptr_t ident; short filter; unsigned short flags; unsigned int fflags; int64_t data; intptr_t udata; uint64_t ext[4]; };
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_PROC (-5)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_ERROR 0x4000
#define EV_EOF 0x8000
#define NOTE_EXIT 0x80000000U
#define EV_SET(kevp, a, b, c, d, e, f) do { struct kevent* __kevp = (kevp); __kevp->ident = (a); __kevp->filter = (b); __kevp->flags = (c); __kevp->fflags = (d); __kevp->data = (e); __kevp->udata = (f); } while (0)
extern "C" int kqueue(void);
extern "C" int kevent(int, const struct kevent*, int, struct kevent*, int, const struct timespec*);
