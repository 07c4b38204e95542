// Recursive-descent parser for the jinja2 language subset chat templates use, following
// jinja2's operator precedence.
#pragma once

#include <string>
#include <vector>

#include "text/jinja/ast.h"

namespace mxgemma::jinja {

// Throws TemplateError "template syntax error at line N: ..." for malformed templates and for
// filters or tests that do not exist (jinja2 reports both at compile time).
std::vector<NodePtr> parse_template(const std::string& source);

}  // namespace mxgemma::jinja
