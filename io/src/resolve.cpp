// resolve.cpp — io::resolve: getaddrinfo on the blocking pool (POSIX and Windows).
#include <taskport/io/resolve.hpp>
#include <taskport/runtime.hpp>

#include "service.hpp"
#include "socket_types.hpp"

#include <algorithm>
#include <cerrno>
#include <new>
#include <string>


namespace taskport::io {

namespace {

class gai_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "taskport.getaddrinfo"; }
    std::string message(int code) const override { return detail::gai_message(code); }
    std::error_condition default_error_condition(int code) const noexcept override {
        if (code == EAI_MEMORY) return std::errc::not_enough_memory;
        return {code, *this};
    }
};

}  // namespace

const std::error_category& gai_category() noexcept {
    static const gai_category_impl cat;
    return cat;
}

namespace detail {

resolve_op::resolve_op(service* s, std::string h, std::string sv) noexcept
    : coro_operation(&resolve_op::perform_resolve), host(std::move(h)), service_name(std::move(sv)) {
    svc = s;
}

resolve_op::resolve_op(resolve_op&& o) noexcept
    : coro_operation(std::move(o)), host(std::move(o.host)), service_name(std::move(o.service_name)),
      result(std::move(o.result)) {}

namespace {

// getaddrinfo(host, service) into out (each address once) and ec.
void resolve_into(const std::string& host, const std::string& service_name, std::vector<endpoint>& out,
                  std::error_code& ec) noexcept {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    addrinfo* list = nullptr;
    net_init();
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(),
                           service_name.empty() ? nullptr : service_name.c_str(), &hints, &list);
    if (rc != 0) {
#ifdef EAI_SYSTEM
        if (rc == EAI_SYSTEM) {
            ec = std::error_code(errno, std::system_category());
            return;
        }
#endif
        ec = std::error_code(rc, gai_category());
        return;
    }
    ec.clear();
    try {
        // One entry per address: without a socket type getaddrinfo lists each address once per
        // type (stream, datagram, raw).
        for (addrinfo* a = list; a; a = a->ai_next) {
            std::error_code bad;
            endpoint e = endpoint::from_sockaddr(a->ai_addr, static_cast<std::uint32_t>(a->ai_addrlen), bad);
            if (bad) continue;  // a family endpoint does not hold
            if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
        }
        if (out.empty()) ec = std::error_code(EAI_NONAME, gai_category());
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    ::freeaddrinfo(list);
}

// The call's own context: getaddrinfo may not return for as long as the name servers keep
// silent, and the operation (with_timeout, cancel, shutdown) must not wait for it.
struct resolve_call final : blocking_call {
    resolve_call(std::string h, std::string s) : host(std::move(h)), service_name(std::move(s)) {}
    const char* name() const noexcept override { return "getaddrinfo"; }
    void run() noexcept override { resolve_into(host, service_name, result, ec); }
    void deliver(operation* o) noexcept override {
        auto* op = static_cast<resolve_op*>(o);
        op->ec = ec;
        op->result = std::move(result);
    }
    std::string host, service_name;
    std::vector<endpoint> result;
    std::error_code ec;
};

}  // namespace

bool resolve_op::start() noexcept {
    if (!enter_scope()) return false;
    submit_detachable(svc->pool, this, [&] { return new resolve_call(host, service_name); });
    return true;
}

// The fallback of start(): the call on the operation's own fields.
bool resolve_op::perform_resolve(operation* o) noexcept {
    auto* op = static_cast<resolve_op*>(o);
    resolve_into(op->host, op->service_name, op->result, op->ec);
    return true;
}

std::vector<endpoint> resolve_op::await_resume() {
    if (ec) throw std::system_error(ec, "taskport::io::resolve " + host + ":" + service_name);
    return std::move(result);
}

}  // namespace detail

detail::resolve_op resolve(runtime& rt, std::string_view host, std::string_view service) {
    return detail::resolve_op(&detail::service_of(rt), std::string(host), std::string(service));
}

}  // namespace taskport::io
