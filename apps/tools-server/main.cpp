// SPDX-License-Identifier: Apache-2.0
// tools-server: reads the configuration, starts the library's Host once, serves gRPC; SIGHUP
// reloads, SIGTERM/SIGINT drain and stop.
#include <cerrno>
#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <malloc.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include <pagi_exec/pagi_exec.hpp>

#include "audit_sink.hpp"
#include "auth.hpp"
#include "call_metrics.hpp"
#include "cancellation.hpp"
#include "codec.hpp"
#include "config.hpp"
#include "drain.hpp"
#include "grpc_log.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "metrics_http.hpp"
#include "policy_watch.hpp"
#include "readiness.hpp"
#include "server_options.hpp"
#include "service.hpp"
#include "spawner_location.hpp"
#include "systemd_notify.hpp"
#include "workers.hpp"

namespace {

using tools_server::LogLevel;
using tools_server::ServerConfig;

// How long in-flight calls get to finish after the drain (their executions are already stopped).
constexpr auto shutdown_grace = std::chrono::seconds(2);

// Exit code of a server that cannot listen where it was told to.
constexpr int exit_cannot_listen = 1;

// SIGTERM and SIGINT stop the server (a second one during the drain stops it at once).
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// These and SIGHUP are blocked in every thread (grpc's threads inherit this mask) and taken with
// sigtimedwait() by the main thread: no grpc call ever runs in a signal handler.
sigset_t handled_signals() {
  sigset_t set = stop_signals();
  sigaddset(&set, SIGHUP);
  return set;
}

// The builder sequence; `bound` receives the address clients can dial ("127.0.0.1:40123").
pagi_exec::Result<std::unique_ptr<grpc::Server>> start_server(
    const ServerConfig& config, const std::shared_ptr<grpc::ServerCredentials>& credentials, grpc::Service& service,
    std::string& bound) {
  // Every method of ours is a callback method (service.hpp), as grpc.health.v1's are: no thread
  // quota to run out of; executions are admitted by pagi_exec::Admission. Only grpc++'s reflection
  // service is synchronous: its rare calls run on grpc's own sync threads.
  int port = 0;
  tools_server::enable_standard_services();  // grpc.health.v1 and reflection: before the builder
  grpc::ServerBuilder builder;
  tools_server::apply(config.channel, builder);
  // grpc sets SO_REUSEPORT by default: a second server on a busy port would start and silently
  // share it. A port in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config.listen, credentials, &port);
  builder.RegisterService(&service);
  tools_server::add_call_metrics(builder);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    return pagi_exec::fail(pagi_exec::Errc::io,
                           "cannot listen on " + config.listen + " (address in use, or not permitted?)");
  }
  const bool is_unix = config.listen.starts_with("unix:");
  bound = is_unix ? config.listen : config.listen.substr(0, config.listen.rfind(':')) + ":" + std::to_string(port);
  return server;
}

// Anyone who can reach the port can claim any twin when there is no authentication.
void warn_if_exposed(const ServerConfig& config, const std::string& bound, bool tls) {
  const bool loopback = tools_server::is_loopback(bound);
  if (config.auth == "none" && !loopback) {  // only with TOOLS_AUTH=none given (see check_exposure)
    tools_server::log(LogLevel::warn, "!!! listening on " + bound +
                                          " beyond loopback WITHOUT AUTHENTICATION (TOOLS_AUTH=none was set): any "
                                          "caller can act as any twin; set TOOLS_AUTH=token or mtls, or listen on "
                                          "127.0.0.1 / a unix socket");
  }
  if (config.auth == "token" && !tls && !loopback) {
    tools_server::log(LogLevel::warn, "!!! bearer tokens travel in clear text on " + bound +
                                          ": set TOOLS_TLS_CERT and TOOLS_TLS_KEY");
  }
}

int fail_startup(const pagi_exec::Error& error, int exit_code = tools_server::exit_bad_config) {
  tools_server::log_startup_failure(error);
  return exit_code;
}

// Parses flags and environment; nullopt with `exit_code` set when the process should end now.
std::optional<ServerConfig> parse_config(int argc, char** argv, int& exit_code) {
  CLI::App app{"pagi-exec tools-server: policy-checked, sandboxed tool execution over gRPC "
               "(tools.ToolExecutorService). Every flag can also be set by the environment variable shown."};
  app.set_version_flag("--version", pagi_exec::version);
  tools_server::RawSettings raw;
  tools_server::add_settings(app, raw);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e) == 0 ? 0 : tools_server::exit_bad_config;
    return std::nullopt;
  }
  auto config = tools_server::resolve_settings(raw);
  if (!config) {
    exit_code = fail_startup(config.error());
    return std::nullopt;
  }
  return *config;
}

// SIGHUP: reopens the audit log (logrotate's postrotate), reloads the policy file and, with token
// authentication, the tokens file. Whatever fails keeps its old state and is logged.
void reload(pagi_exec::Host& host, const ServerConfig& config, tools_server::AuthHolder& auth,
            tools_server::PolicyWatch& policy_watch) {
  tools_server::log(host.reopen_audit());
  policy_watch.reload_now(host);
  if (config.auth != "token") return;
  auto tokens = tools_server::TokenTable::load(config.auth_tokens_file);
  if (!tokens) {
    tools_server::log(LogLevel::error, "SIGHUP: tokens NOT reloaded, the old ones stay valid: " + tokens.error().message());
    return;
  }
  tools_server::log(LogLevel::info, "SIGHUP: " + std::to_string(tokens->size()) + " tokens reloaded");
  auth.replace(tools_server::Authenticator::with_tokens(std::move(*tokens)));
}

// The audit log's failures are reported in the server log.
std::shared_ptr<pagi_exec::AuditSink> logging_sink(std::shared_ptr<pagi_exec::AuditLog> log) {
  return std::make_shared<tools_server::LoggingAuditSink>(std::move(log));
}

// What the operator reads once the server listens; the first stdout line gives the address.
void announce(const ServerConfig& config, const pagi_exec::Host& host, const std::string& bound, bool tls) {
  warn_if_exposed(config, bound, tls);
  const auto health = host.health();
  tools_server::log(pagi_exec::isolation_notices(health));
  tools_server::log(host.host_network_notices());
  std::cout << "listening on " << bound << std::endl;  // tests read the port here
  tools_server::log(LogLevel::info, "tools-server " + std::string(pagi_exec::version) + " listening on " + bound + " " +
                                        pagi_exec::describe(health));
}

// Serves until SIGTERM or SIGINT, reloading at each SIGHUP; the signal that ended it. Each second
// it reloads the policy if its file changed (policy_watch.hpp) and reads readiness again (an audit
// log that failed or recovered), and after each reload. Every 10 s it hands the memory freed by a
// burst (connections gone, requests answered) back to the kernel: glibc keeps it in its per-thread
// heaps otherwise, and the server's RSS would stay at its busiest.
int wait_for_stop(const sigset_t& signals, pagi_exec::Host& host, const ServerConfig& config,
                  tools_server::AuthHolder& auth, tools_server::Readiness& readiness,
                  tools_server::PolicyWatch& policy_watch) {
  const timespec tick{.tv_sec = 1, .tv_nsec = 0};
  constexpr unsigned trim_every_ticks = 10;
  for (unsigned ticks = 1;; ++ticks) {
    const int signal_number = sigtimedwait(&signals, nullptr, &tick);
    if (signal_number < 0 && errno == EAGAIN) {
      policy_watch.tick(host);
      readiness.update();
      if (ticks % trim_every_ticks == 0) malloc_trim(0);
    } else if (signal_number == SIGHUP) {
      reload(host, config, auth, policy_watch);
      readiness.update();
    } else if (signal_number > 0) {
      return signal_number;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // First of all, while the process is small, single-threaded and holds no secret: executions are
  // cloned from this copy, never from the server (see pagi_exec::start_spawn_helper).
  const auto spawner = pagi_exec::spawner_program(pagi_exec_apps::spawner_location());
  if (auto helper = spawner.and_then(pagi_exec::start_spawn_helper); !helper) {
    return fail_startup(helper.error(), 1);
  }
  const sigset_t signals = handled_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread exists
  // Requests and answers of several MiB go to their own mappings and back to the kernel when
  // freed. glibc would otherwise raise its threshold after the first such free and keep later
  // ones in the heap of whichever grpc thread handled them: tens of MiB held per thread.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  int exit_code = 0;
  const auto config = parse_config(argc, argv, exit_code);
  if (!config) return exit_code;
  tools_server::set_log_level(config->log_level);
  tools_server::set_log_format(config->log_format);
  tools_server::send_grpc_logs_to_server_log();

  tools_server::PolicyWatch policy_watch(config->host.policy_file);  // before the host loads the file
  pagi_exec::Notices notices;
  auto host = pagi_exec::Host::start(config->host, notices, logging_sink,
                                     [](const pagi_exec::Notices& later) { tools_server::log(later); });
  tools_server::log(notices);
  if (!host) return fail_startup(host.error());

  auto security = tools_server::make_security(config->auth, config->auth_tokens_file, config->tls_cert,
                                             config->tls_key, config->tls_client_ca);
  if (!security) return fail_startup(security.error());

  tools_server::Cancellations cancellations;
  // Every execution admission lets run, and a reserve for the brief tasks beyond them. Declared
  // before the server: after the server is gone, it waits for the last worker to return.
  tools_server::Workers workers(config->host.max_concurrency + tools_server::brief_task_threads);
  tools_server::AuthHolder auth(security->authenticator);
  tools_server::ToolExecutorService service(**host, cancellations, workers, auth);
  auto metrics = tools_server::MetricsHttp::start(config->metrics_addr, **host);  // none without an address
  if (!metrics) return fail_startup(metrics.error(), exit_cannot_listen);
  std::string bound;
  auto server = start_server(*config, security->credentials, service, bound);
  if (!server) return fail_startup(server.error(), exit_cannot_listen);
  tools_server::Readiness readiness(*(*server)->GetHealthCheckService(), **host);
  announce(*config, **host, bound, security->tls);
  if (*metrics) (*metrics)->announce();
  tools_server::notify_ready(bound);

  const int signal_number = wait_for_stop(signals, **host, *config, auth, readiness, policy_watch);
  tools_server::log(LogLevel::info, std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                                        ": draining, then shutting down");
  tools_server::notify_stopping();
  tools_server::drain(cancellations, readiness, config->drain_timeout, stop_signals());
  (*server)->Shutdown(std::chrono::system_clock::now() + shutdown_grace);
  (*server)->Wait();
  metrics->reset();  // the metrics listener's threads end
  tools_server::log(LogLevel::info, "stopped");
  return 0;
}
