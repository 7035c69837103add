// SPDX-License-Identifier: Apache-2.0
// Umbrella header: the whole public API of libpagi_exec. Free of grpc and protobuf.
#pragma once

#include "pagi_exec/admission.hpp"
#include "pagi_exec/audit.hpp"
#include "pagi_exec/command.hpp"
#include "pagi_exec/decision.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/executor.hpp"
#include "pagi_exec/history.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/shell_scan.hpp"
#include "pagi_exec/spawner.hpp"
#include "pagi_exec/tool_catalog.hpp"
#include "pagi_exec/paths.hpp"
#include "pagi_exec/version.hpp"
