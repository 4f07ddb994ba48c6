// Stand-in for FreeBSD's <sys/event.h>: the declarations io/src/kqueue_poller.cpp uses, with
// FreeBSD's layout (udata void*, EVFILT_USER), for .ci/run's compile check of the kqueue poller
// on Linux (no kqueue system or libkqueue package here). Not a kqueue: nothing runs against it.
#pragma once
#include <stdint.h>
#include <time.h>
struct kevent { uintptr_t ident; short filter; unsigned short flags; unsigned int fflags; int64_t data; void* udata; uint64_t ext[4]; };
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_PROC (-5)
#define EVFILT_USER (-11)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_ERROR 0x4000
#define EV_EOF 0x8000
#define NOTE_EXIT 0x80000000U
#define NOTE_TRIGGER 0x01000000
#define EV_SET(kevp, a, b, c, d, e, f) do { struct kevent* __kevp = (kevp); __kevp->ident = (a); __kevp->filter = (b); __kevp->flags = (c); __kevp->fflags = (d); __kevp->data = (e); __kevp->udata = (f); } while (0)
extern "C" int kqueue(void);
extern "C" int kevent(int, const struct kevent*, int, struct kevent*, int, const struct timespec*);
