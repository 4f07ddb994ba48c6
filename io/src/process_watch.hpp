// process_watch.hpp — a child's exit on kqueue: EVFILT_PROC (NOTE_EXIT) in the runtime's own
// kqueue, through the readiness core like any descriptor (used by process.cpp on the kqueue
// backend; implemented in kqueue_poller.cpp, stubs in no_kqueue.cpp).
//
// A process watch is a pseudo-descriptor: a negative number (<= -2, never a real descriptor)
// that names one registration of one pid. process.cpp makes a socket_core on it, so the
// readiness core's queues, cancel, close and shutdown rules apply unchanged:
// reactor::attach -> kqueue_poller::add(number, tag) adds EVFILT_PROC NOTE_EXIT for the pid
// (EV_ONESHOT, udata = tag) and the poller reports its event as read readiness of the tag;
// reactor::detach -> kqueue_poller::remove(number) deletes it if it is still there; closing
// the number is a harmless EBADF.
//
// Invariant: while a pid is registered it has not been reaped. Before every waitpid of a
// watched child, process.cpp calls process_watch_suspend (the knote is deleted, so no kevent
// can name a pid that the reap frees for reuse, and libkqueue's copyout, which calls
// waitid(WNOWAIT) on the pid, never meets a reaped child: it would fail and cut the batch);
// if the child turns out to be still running, process_watch_resume adds it back. A number is
// unique for the life of the process (a reused pid gets a new number), so removing an old
// watch never deletes a new child's registration. All of this is under one mutex.
#pragma once

namespace taskport::io::detail {

// A new watch number for pid. Throws std::bad_alloc.
int process_watch_open(long pid);
// Forgets the number (after its socket_core was closed: detach has removed the knote).
void process_watch_close(int number) noexcept;
// Deletes the knote if registered (before a waitpid). Nothing if not registered.
void process_watch_suspend(int number) noexcept;
// Adds the knote back after a waitpid that found the child running. Returns 0 when the knote
// is in place again (or the watch is not registered on a poller: nothing to do), ESRCH when
// the child has exited meanwhile (BSD refuses the knote: the caller's next waitpid finds it),
// another errno when kevent failed (the wait then fails with it rather than never waking).
int process_watch_resume(int number) noexcept;
// True where this build can watch processes with EVFILT_PROC.
bool process_watch_available() noexcept;

inline bool is_process_watch(int fd) noexcept { return fd <= -2; }

}  // namespace taskport::io::detail
