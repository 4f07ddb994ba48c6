// taskport/when_all.hpp — when_all and when_any over futures.
//
// A combinator is one heap block: its own result state plus one continuation per input. It is
// referenced by its result future and by every input that has not yet completed, so an input
// completing late never touches freed memory. Completing the result happens inline on the
// thread that completes the deciding input (it only moves values); continuations of the result
// then run as tasks as usual.
#pragma once

#include <taskport/future.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

namespace taskport {

// when_any(futures, cancel_losers): once the first input completes, cancel() the others.
struct cancel_losers_t {
    explicit cancel_losers_t() = default;
};
/// Pass to when_any to cancel() the inputs that did not finish first.
inline constexpr cancel_losers_t cancel_losers{};

/// What when_any gives: which input finished first, and its value.
template <class T>
struct when_any_result {
    std::size_t index;  // which input completed first
    /// The first input's value.
    T value;
};
/// What when_any over future<void> gives: which input finished first.
template <>
struct when_any_result<void> {
    /// Which input completed first.
    std::size_t index;
};

namespace detail {

template <class R, class Derived>
struct combinator : shared_state<R>, task_allocated {
    struct slot final : wait_node {
        slot() noexcept : wait_node(&slot::on_notify) {}
        static void on_notify(continuation* c) noexcept {
            auto* s = static_cast<slot*>(c);
            // Cast here, not in the constructor: the Derived object is complete only by now.
            static_cast<Derived*>(s->owner)->input_ready(s->index);
        }
        combinator* owner = nullptr;
        std::size_t index = 0;
    };

    combinator(std::size_t n, executor* ex)
        : shared_state<R>(ex, static_cast<std::uint32_t>(n + 1)), slots(new slot[n]), remaining(n) {
        for (std::size_t i = 0; i < n; ++i) {
            slots[i].owner = this;
            slots[i].index = i;
        }
    }
    void destroy() noexcept override { delete static_cast<Derived*>(this); }

    std::unique_ptr<slot[]> slots;
    std::atomic<std::size_t> remaining;
};

template <class T>
struct all_vec final : combinator<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>, all_vec<T>> {
    using R = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
    using base = combinator<R, all_vec<T>>;

    all_vec(std::vector<future<T>>&& in, executor* ex) : base(in.size(), ex), inputs(std::move(in)) {}

    void input_ready(std::size_t) noexcept {
        if (this->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
        this->release();
    }
    void finish() noexcept {
        std::exception_ptr err;
        for (auto& f : inputs)
            if (!err && f.state_ptr()->has_error()) err = f.state_ptr()->take_error();
        // An error is moved out of its input, and published only once the inputs and this
        // thread's handlers have let go of it: the last reference to an exception must not be
        // dropped here, or by an input's producer, after a taker has read it (see
        // shared_state::take()).
        if (err) {
            inputs.clear();
            this->set_exception(std::move(err));
            return;
        }
        if constexpr (std::is_void_v<T>) {
            inputs.clear();
            this->set_value();
        } else {
            try {
                std::vector<T> out;
                out.reserve(inputs.size());
                for (auto& f : inputs) out.push_back(f.get());
                inputs.clear();
                this->set_value(std::move(out));
                return;
            } catch (...) {
                err = std::current_exception();
            }
            inputs.clear();
            this->set_exception(std::move(err));
        }
    }

    std::vector<future<T>> inputs;
};

template <class... Ts>
struct all_tuple final : combinator<std::tuple<stored_t<Ts>...>, all_tuple<Ts...>> {
    using R = std::tuple<stored_t<Ts>...>;
    using base = combinator<R, all_tuple<Ts...>>;

    all_tuple(std::tuple<future<Ts>...>&& in, executor* ex)
        : base(sizeof...(Ts), ex), inputs(std::move(in)) {}

    void input_ready(std::size_t) noexcept {
        if (this->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
        this->release();
    }
    template <class T>
    static stored_t<T> take(future<T>& f) {
        if constexpr (std::is_void_v<T>) {
            f.get();
            return {};
        } else {
            return f.get();
        }
    }
    void finish() noexcept {
        std::exception_ptr err;
        std::apply([&](auto&... f) { ((err = err ? std::move(err) : (f.state_ptr()->has_error() ? f.state_ptr()->take_error() : nullptr)), ...); }, inputs);
        if (err) {  // published once the inputs have let go of it (see all_vec::finish())
            inputs = std::tuple<future<Ts>...>();
            this->set_exception(std::move(err));
            return;
        }
        try {
            R out = std::apply([](auto&... f) { return R(take(f)...); }, inputs);
            this->set_value(std::move(out));
            return;
        } catch (...) {
            err = std::current_exception();
        }
        inputs = std::tuple<future<Ts>...>();
        this->set_exception(std::move(err));
    }

    std::tuple<future<Ts>...> inputs;
};

template <class T>
struct any_vec final : combinator<when_any_result<T>, any_vec<T>> {
    using base = combinator<when_any_result<T>, any_vec<T>>;

    any_vec(std::vector<future<T>>&& in, executor* ex, bool cancel)
        : base(in.size(), ex), inputs(std::move(in)), cancel_others(cancel) {}

    void input_ready(std::size_t i) noexcept {
        if (!won.exchange(true, std::memory_order_acq_rel)) {
            // The losers' futures are only read here (cancel() is const on the state) and
            // destroyed with the node, so no other input_ready() races with this loop.
            if (cancel_others)
                for (std::size_t j = 0; j < inputs.size(); ++j)
                    if (j != i) inputs[j].cancel();
            std::exception_ptr err;
            {
                future<T> f = std::move(inputs[i]);
                try {
                    if constexpr (std::is_void_v<T>) {
                        f.get();
                        this->set_value(when_any_result<void>{i});
                    } else {
                        this->set_value(when_any_result<T>{i, f.get()});
                    }
                } catch (...) {
                    err = std::current_exception();
                }
            }
            // Published once the winner's future and the handler have let go of it (see
            // all_vec::finish()).
            if (err) this->set_exception(std::move(err));
        }
        this->release();
    }

    std::vector<future<T>> inputs;
    std::atomic<bool> won{false};
    const bool cancel_others;  // cancel the losers when the first input completes
};

template <class Node, class Futures>
void arm_all(Node* node, Futures& states) {
    std::size_t i = 0;
    for (state_base* s : states) {
        if (!s->arm(&node->slots[i])) node->slots[i].notify();
        ++i;
    }
}

inline executor* combinator_exec() noexcept { return current_executor(); }

}  // namespace detail

// Ready when every input is; the values in input order, or the first input's (by position)
// exception once all have finished.
template <class T>
auto when_all(std::vector<future<T>> futures) {
    using R = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
    for (auto& f : futures)
        if (!f.valid()) throw std::future_error(std::future_errc::no_state);
    std::vector<detail::state_base*> states;
    states.reserve(futures.size());
    for (auto& f : futures) states.push_back(f.state_ptr());
    if (futures.empty()) {
        if constexpr (std::is_void_v<T>)
            return make_ready_future<void>();
        else
            return make_ready_future<R>();
    }
    auto* node = new detail::all_vec<T>(std::move(futures), detail::combinator_exec());
    future<R> out = detail::make_future<R>(node);
    detail::arm_all(node, states);
    return out;
}

/// Ready when every input is: their values as a tuple (void as std::monostate), or the first
/// input's (by position) exception once all have finished. Consumes the futures.
template <class... Ts>
    requires(sizeof...(Ts) > 0)
future<std::tuple<detail::stored_t<Ts>...>> when_all(future<Ts>... fs) {
    using R = std::tuple<detail::stored_t<Ts>...>;
    if (!(fs.valid() && ...)) throw std::future_error(std::future_errc::no_state);
    std::vector<detail::state_base*> states{fs.state_ptr()...};
    auto* node = new detail::all_tuple<Ts...>(std::tuple<future<Ts>...>(std::move(fs)...),
                                              detail::combinator_exec());
    future<R> out = detail::make_future<R>(node);
    detail::arm_all(node, states);
    return out;
}

namespace detail {
template <class T>
future<when_any_result<T>> when_any_impl(std::vector<future<T>> futures, bool cancel_others) {
    if (futures.empty()) throw std::invalid_argument("taskport::when_any: no futures given");
    for (auto& f : futures)
        if (!f.valid()) throw std::future_error(std::future_errc::no_state);
    std::vector<detail::state_base*> states;
    states.reserve(futures.size());
    for (auto& f : futures) states.push_back(f.state_ptr());
    auto* node = new detail::any_vec<T>(std::move(futures), detail::combinator_exec(), cancel_others);
    auto out = detail::make_future<when_any_result<T>>(node);
    detail::arm_all(node, states);
    return out;
}
}  // namespace detail

// Ready when the first input completes: its index and value, or its exception. The other
// inputs keep running (with cancel_losers: they are cancel()ed); their results are discarded.
template <class T>
future<when_any_result<T>> when_any(std::vector<future<T>> futures, cancel_losers_t) {
    return detail::when_any_impl(std::move(futures), true);
}
/// Ready when the first input completes: its index and value, or its exception. The others run
/// on; their results are discarded. Consumes the futures.
template <class T>
future<when_any_result<T>> when_any(std::vector<future<T>> futures) {
    return detail::when_any_impl(std::move(futures), false);
}


}  // namespace taskport
