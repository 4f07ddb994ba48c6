// cq_model.cpp — Relacy model of io's completion queue (io/src/completion_queue.hpp, the real
// header, instantiated with rl_atomics) at shutdown: one worker drains it and leaves by the
// executor's rule (work_stealing::park: the executor is closed, then the source looks empty, both
// seq_cst), a shutdown thread closes the executor, waits for the worker and orphans the queue,
// and two outside threads push completions (one a batch of two) at any moment of that. The worker
// also pushes one completion itself (a worker's poll). Checked: every completion runs exactly
// once (on the worker, or on its pusher after shutdown) — none is stranded in the queue — and
// its payload (written before the push) is read after a happens-before edge. orphan()'s own
// drain (a safety net) must find nothing: a completion run there was stranded from shutdown()
// until the runtime's destruction.
//
// The executor here is a stand-in with the two facts the queue reads (closed(), whether the
// calling thread is a worker); its exit rule is work_stealing::park's termination test reduced to
// one worker: `closed_ (seq_cst) && source->empty()`.
//
// planted: CQ_UNANNOUNCED_PUSH CQ_EMPTY_READS_SIZE_FIRST
//   CQ_UNANNOUNCED_PUSH        push() decides from a snapshot of closed() and then queues (the
//                              bug of issue 8 item 8): the worker can leave in between, stranding
//                              the batch.
//   CQ_EMPTY_READS_SIZE_FIRST  empty() reads size_ before pushers_: a whole push can fall between
//                              the two reads and the worker leaves it behind.
#include "relacy_atomics.hpp"

#include "completion_queue.hpp"

// The model's executor inherits executor::help_until_deadline's default body (executor.hpp),
// which calls the library's futex functions; the model never calls it and links no library, so
// these stand-ins only satisfy the linker (they are never reached).
namespace taskport::detail {
void futex_wait_for(std::atomic<std::uint32_t>&, std::uint32_t, std::chrono::nanoseconds) noexcept {}
void futex_wake_one(std::atomic<std::uint32_t>&) noexcept {}
}  // namespace taskport::detail

namespace {

using taskport::detail::task_node;
using taskport::model::rl_atomics;
using queue = taskport::io::detail::basic_completion_queue<rl_atomics>;

constexpr int n_items = 4;  // 0: worker's own push; 1: outside pusher A; 2, 3: pusher B's batch

struct fake_executor;
fake_executor* the_executor = nullptr;  // set in before(); read by current_executor()

struct fake_executor final : taskport::detail::executor {
    rl_atomics::atomic<bool> closed_{false};
    void schedule(task_node*) override {}
    void schedule_accepted(task_node*) noexcept override {}
    void schedule_next(task_node*) noexcept override {}
    void schedule_yield(task_node*) noexcept override {}
    void schedule_batch(task_node*, task_node*, std::size_t) noexcept override {}
    bool in_worker() const noexcept override { return rl::ctx().current_thread() == 0; }
    void attach_source(taskport::detail::task_source*) noexcept override {}
    void notify_source() noexcept override {}
    bool local_queue_empty() const noexcept override { return true; }
    void help_until(taskport::detail::waitable&) override {}
    void shutdown() noexcept override {}
    // As work_stealing::closed() and tbb_arena's: a seq_cst load (the queue relies on it).
    bool closed() const noexcept override {
        return const_cast<rl_atomics::atomic<bool>&>(closed_).load(rl_atomics::seq_cst);
    }
    std::size_t concurrency() const noexcept override { return 1; }
    taskport::scheduler_stats stats() const override { return {}; }
};

struct item : task_node {
    item() : task_node(&run_it) {}
    static void run_it(task_node* t) noexcept;
    int id = 0;
    rl_atomics::var<int> payload;
};

int ran[n_items];  // reset in before(); Relacy runs the threads as fibers on one OS thread

void item::run_it(task_node* t) noexcept {
    auto* it = static_cast<item*>(t);
    RL_ASSERT(it->payload.load() == 100 + it->id);
    RL_ASSERT(ran[it->id] == 0);  // run twice
    // Thread 1 is the runtime's destruction: orphan() runs what is still queued there. With the
    // protocol right nothing is left by then (the worker stays while a push is announced, and
    // later pushes run on their pushers); a completion found there sat stranded from shutdown()
    // to the runtime's destruction, which a thread waiting for it before destroying never sees.
    RL_ASSERT(rl::ctx().current_thread() != 1);
    ++ran[it->id];
}

struct cq_test : rl::test_suite<cq_test, 4> {
    item items[n_items];
    fake_executor* ex = nullptr;
    queue* q = nullptr;
    rl_atomics::atomic<bool> worker_left{false};

    void before() {
        ex = new fake_executor;
        the_executor = ex;
        q = new queue(*ex);
        for (int i = 0; i < n_items; ++i) {
            items[i].id = i;
            ran[i] = 0;
        }
    }
    void after() {
        for (int i = 0; i < n_items; ++i) RL_ASSERT(ran[i] == 1);  // 0: stranded
        delete q;
        delete ex;
        the_executor = nullptr;
    }
    void drain() {
        std::size_t n = 0;
        while (task_node* t = q->pop_batch(2, n)) {
            while (t) {
                task_node* next = t->next;
                t->next = nullptr;
                t->run();
                t = next;
            }
        }
    }

    void thread(unsigned idx) {
        switch (idx) {
            case 0: {  // the worker
                items[0].payload.store(100);
                q->push(&items[0]);
                for (;;) {
                    drain();
                    if (ex->closed_.load(rl_atomics::seq_cst) && q->empty()) break;
                    rl::yield(1, $);
                }
                worker_left.store(true, rl_atomics::seq_cst);
                break;
            }
            case 1: {  // runtime::shutdown(), then the runtime's destruction
                ex->closed_.store(true, rl_atomics::seq_cst);
                while (!worker_left.load(rl_atomics::seq_cst)) rl::yield(1, $);
                q->orphan();
                break;
            }
            case 2: {  // an outside thread completing one operation
                items[1].payload.store(101);
                q->push(&items[1]);
                break;
            }
            case 3: {  // another, a batch of two
                taskport::io::detail::op_batch b;
                items[2].payload.store(102);
                items[3].payload.store(103);
                b.push(&items[2]);
                b.push(&items[3]);
                q->push(b);
                break;
            }
        }
    }
};

}  // namespace

// The library's current_executor(), for the queue's worker test: thread 0 is the worker.
taskport::detail::executor* taskport::detail::current_executor() noexcept {
    return rl::ctx().current_thread() == 0 ? the_executor : nullptr;
}

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
    bool ok = taskport::model::run_suite<cq_test>(
        "completion queue: outside pushes racing shutdown and orphan()", iterations);
    return ok ? 0 : 1;
}
