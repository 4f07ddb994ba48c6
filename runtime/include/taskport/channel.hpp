// taskport/channel.hpp — channel<T>: a bounded or unbounded MPMC queue tasks wait on.
//
// co_await ch.send(v) parks the task while the channel is full (bounded); co_await
// ch.receive() parks it while empty and returns std::optional<T>: a value, or std::nullopt
// once the channel is closed and drained (end of stream). close() stops new sends (send then
// throws channel_closed_error(); senders waiting at close() get it too, and keep their value),
// and lets receivers drain what is queued before they see end of stream. try_send/try_receive
// never wait; send_blocking/receive_blocking are for outside threads (on a worker they throw
// resource_deadlock_would_occur: co_await the task form there), with a timeout or without.
//
// Fairness: FIFO both ways. Values are received in the order sends completed; waiting senders
// are served in arrival order (the oldest waiting sender's value enters the buffer as soon as
// a slot frees, before any later try_send can take the slot), waiting receivers likewise (a
// send hands its value directly to the oldest waiting receiver).
// Cancellation: a waiting send()/receive() honours cancel() (cancelled_error) and with_timeout
// (timed_out). Exactly once: under the channel's lock a waiting operation is either completed
// (the value moved into the buffer or into the receiver's awaiter) or withdrawn, never both, so
// a value is never lost or duplicated: a cancelled send's value was not sent; a cancelled
// receive took nothing.
// Invariants (under the lock): receivers wait only while the buffer is empty; senders wait only
// while it is full (bounded); nobody waits once closed.
#pragma once

#include <taskport/detail/ring_buffer.hpp>
#include <taskport/detail/sync_wait.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport {

// What send() throws on a closed channel.
inline std::system_error channel_closed_error() {
    return std::system_error(std::make_error_code(std::errc::broken_pipe),
                             "taskport::channel: send on a closed channel");
}

/// What try_send did: sent, the channel was full (bounded), or it was closed.
enum class send_status { sent, full, closed };

/// A bounded or unbounded multi-producer multi-consumer queue tasks wait on (see the file
/// comment). Every member may be called from any thread; FIFO both ways.
template <class T>
class channel : private detail::sync_core {
public:
    // A bounded channel of `capacity` (> 0) values.
    explicit channel(std::size_t capacity) : cap_(capacity) {
        if (capacity == 0) throw std::invalid_argument("taskport::channel: capacity must be > 0");
    }
    // Unbounded: send never waits.
    channel() noexcept : cap_(0) {}
    ~channel() = default;

    struct send_awaiter : detail::sync_waiter {
        template <class U>
        send_awaiter(channel* c, U&& v) : ch(c), value(std::forward<U>(v)) { core = c; }
        send_awaiter(send_awaiter&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
            : detail::sync_waiter(std::move(o)), ch(o.ch), value(std::move(o.value)) {}
        bool await_ready() {
            std::lock_guard<detail::spin_lock> g(ch->lock_);
            result = ch->send_locked(value, wake);
            return result != send_status::full;
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return ch->suspend_send(this, value, result, wake);
        }
        void await_resume() {
            wake.run();
            if (aborted()) throw cancelled_error();
            if (result == send_status::closed || status == closed_status) throw channel_closed_error();
        }
        channel* ch;
        T value;                                  // moved out once sent
        send_status result = send_status::full;   // of the attempts made before waiting
        detail::wake_list wake;                   // a receiver this send completed
    };

    struct receive_awaiter : detail::sync_waiter {
        explicit receive_awaiter(channel* c) noexcept : ch(c) { core = c; }
        receive_awaiter(receive_awaiter&& o) noexcept : detail::sync_waiter(std::move(o)), ch(o.ch) {}
        bool await_ready() {
            std::lock_guard<detail::spin_lock> g(ch->lock_);
            return ch->receive_locked(slot, wake);
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return ch->suspend_receive(this, slot, wake);
        }
        std::optional<T> await_resume() {
            wake.run();
            if (aborted()) throw cancelled_error();
            return std::move(slot);
        }
        channel* ch;
        std::optional<T> slot;   // the value handed over; empty at end of stream
        detail::wake_list wake;  // a sender this receive let in
    };

    // co_await send(v): waits while full; throws channel_closed_error() once closed.
    template <class U = T>
    send_awaiter send(U&& v) {
        return send_awaiter(this, std::forward<U>(v));
    }
    // co_await receive(): the next value, or std::nullopt once closed and drained.
    receive_awaiter receive() noexcept { return receive_awaiter(this); }

    // Never waits. An rvalue is moved from only when sent; an lvalue is copied.
    template <class U>
    send_status try_send(U&& v) {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if constexpr (std::is_lvalue_reference_v<U>) {
            const std::remove_reference_t<U>& c = v;
            return send_locked(c, wake);
        } else {
            return send_locked(v, wake);
        }
    }
    // Never waits: a value, or std::nullopt when none is queued (see is_closed()).
    std::optional<T> try_receive() {
        detail::wake_list wake;
        std::optional<T> out;
        std::lock_guard<detail::spin_lock> g(lock_);
        receive_locked(out, wake);
        return out;
    }

    // From outside threads: blocking forms of send() and receive(). On a worker they throw
    // std::system_error(resource_deadlock_would_occur).
    template <class U = T>
    void send_blocking(U&& v) {
        detail::refuse_on_worker("taskport::channel::send_blocking");
        T value(std::forward<U>(v));
        detail::blocking_waiter w;
        detail::wake_list wake;
        send_status r = send_status::full;
        if (suspend_send(&w, value, r, wake)) w.wait();
        wake.run();
        if (r == send_status::closed || w.status == closed_status) throw channel_closed_error();
    }
    /// From an outside thread: blocks until a value, or std::nullopt once closed and drained. On a
    /// worker it throws std::system_error(resource_deadlock_would_occur) (co_await receive() there).
    std::optional<T> receive_blocking() {
        detail::refuse_on_worker("taskport::channel::receive_blocking");
        detail::blocking_waiter w;
        std::optional<T> out;
        detail::wake_list wake;
        if (suspend_receive(&w, out, wake)) w.wait();
        wake.run();
        return out;
    }

    /// From an outside thread: send_blocking(v) that gives up at `timeout`. Throws
    /// std::system_error(timed_out) when the value could not be queued or handed to a receiver
    /// within it (it was not sent: exactly once, as with with_timeout), channel_closed_error()
    /// once closed, resource_deadlock_would_occur on a worker. Thread-safe.
    template <class U, class Rep, class Period>
    void send_blocking(U&& v, std::chrono::duration<Rep, Period> timeout) {
        detail::refuse_on_worker("taskport::channel::send_blocking");
        const auto deadline = detail::deadline_after(timeout);
        T value(std::forward<U>(v));
        detail::blocking_waiter w;
        detail::wake_list wake;
        send_status r = send_status::full;
        if (suspend_send(&w, value, r, wake)) detail::wait_blocking_until(*this, w, deadline);
        wake.run();
        if (w.aborted()) throw detail::blocking_timed_out("taskport::channel::send_blocking");
        if (r == send_status::closed || w.status == closed_status) throw channel_closed_error();
    }
    /// From an outside thread: receive_blocking() that gives up at `timeout`: the next value, or
    /// std::nullopt once closed and drained; throws std::system_error(timed_out) when neither
    /// came within it (nothing was taken), resource_deadlock_would_occur on a worker.
    /// Thread-safe.
    template <class Rep, class Period>
    std::optional<T> receive_blocking(std::chrono::duration<Rep, Period> timeout) {
        detail::refuse_on_worker("taskport::channel::receive_blocking");
        const auto deadline = detail::deadline_after(timeout);
        detail::blocking_waiter w;
        std::optional<T> out;
        detail::wake_list wake;
        if (suspend_receive(&w, out, wake)) detail::wait_blocking_until(*this, w, deadline);
        wake.run();
        if (w.aborted()) throw detail::blocking_timed_out("taskport::channel::receive_blocking");
        return out;
    }

    // No more sends; receivers drain what is queued, then see end of stream. Idempotent.
    void close() noexcept {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        closed_ = true;
        while (detail::sync_waiter* w = receivers_.pop_front()) {  // buffer is empty: end of stream
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        }
        while (detail::sync_waiter* w = senders_.pop_front()) {
            w->status = closed_status;  // its value stays with it
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        }
    }

    /// True once close() was called.
    bool is_closed() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return closed_;
    }
    // A snapshot: values queued now.
    std::size_t size() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return buf_.size();
    }
    // Snapshots: senders / receivers waiting now. For tests and monitoring.
    std::size_t waiting_senders() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return senders_.size();
    }
    /// A snapshot: receivers waiting now. For tests and monitoring.
    std::size_t waiting_receivers() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return receivers_.size();
    }
    // 0: unbounded.
    std::size_t capacity() const noexcept { return cap_; }

private:
    static constexpr unsigned char closed_status = 1;  // sync_waiter::status of a sender at close()
    enum : unsigned char { in_senders = 0, in_receivers = 1 };  // sync_waiter::which

    bool suspend_send(detail::sync_waiter* w, T& value, send_status& r, detail::wake_list& wake) {
        w->payload = &value;
        w->which = in_senders;
        return suspend(
            w,
            [&] {
                r = send_locked(value, wake);
                return r != send_status::full;
            },
            [&] { senders_.push_back(w); });
    }
    bool suspend_receive(detail::sync_waiter* w, std::optional<T>& out, detail::wake_list& wake) {
        w->payload = &out;
        w->which = in_receivers;
        return suspend(w, [&] { return receive_locked(out, wake); },
                       [&] { receivers_.push_back(w); });
    }

    // Under the lock. Moves v only when it returns `sent`.
    template <class U>
    send_status send_locked(U& v, detail::wake_list& wake) {
        if (closed_) return send_status::closed;
        if (detail::sync_waiter* r = receivers_.pop_front()) {
            static_cast<std::optional<T>*>(r->payload)->emplace(std::move(v));
            r->state = detail::sync_waiter::st::woken;
            wake.add(r);
            return send_status::sent;
        }
        if (cap_ != 0 && buf_.size() >= cap_) return send_status::full;
        buf_.push_back(std::move(v));
        return send_status::sent;
    }
    // Under the lock. True when done: out holds a value, or is empty at end of stream.
    bool receive_locked(std::optional<T>& out, detail::wake_list& wake) {
        if (!buf_.empty()) {
            out.emplace(std::move(buf_.front()));
            buf_.pop_front();
            if (detail::sync_waiter* s = senders_.pop_front()) {  // a slot freed: the oldest sender's
                buf_.push_back(std::move(*static_cast<T*>(s->payload)));
                s->state = detail::sync_waiter::st::woken;
                wake.add(s);
            }
            return true;
        }
        return closed_;
    }
    void unlink(detail::sync_waiter* w) noexcept override {
        (w->which == in_senders ? senders_ : receivers_).remove(w);
    }

    const std::size_t cap_;     // 0: unbounded
    detail::ring_buffer<T> buf_;  // under lock_; allocates only to grow (see ring_buffer.hpp)
    detail::wait_queue senders_;    // under lock_
    detail::wait_queue receivers_;  // under lock_
    bool closed_ = false;       // under lock_
};

}  // namespace taskport
