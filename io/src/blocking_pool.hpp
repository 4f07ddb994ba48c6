// blocking_pool.hpp — threads for work that must block (files without io_uring, name
// resolution). An operation's perform() runs on a pool thread; when it returns the operation
// goes to the completion queue like any other. Threads start on demand up to a limit and
// wait on a condition variable when idle (no polling).
#pragma once

#include "completion_queue.hpp"
#include "reactor.hpp"

#include <taskport/io/detail/operation.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace taskport::io::detail {

class blocking_pool {
public:
    blocking_pool(completion_queue& cq, std::size_t max_threads);
    ~blocking_pool();

    // op->perform(op) runs on a pool thread (its return value is ignored: it must finish the
    // operation, setting ec/bytes). After shutdown() the op completes with operation_aborted.
    void submit(operation* op) noexcept;
    // Canceller side: aborts op if it has not started running.
    void cancel(operation* op) noexcept;
    // Aborts queued operations, waits for running ones, joins the threads.
    void shutdown() noexcept;

private:
    void worker();

    completion_queue& cq_;
    const std::size_t max_threads_;
    std::mutex mu_;
    std::condition_variable cv_;
    op_queue queue_;              // guarded by mu_
    std::size_t idle_ = 0;        // guarded by mu_
    bool stopped_ = false;        // guarded by mu_
    std::vector<std::thread> threads_;  // guarded by mu_
};

}  // namespace taskport::io::detail
