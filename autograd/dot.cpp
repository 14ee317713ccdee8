// dot.cpp: walks the graph behind a tensor and writes it as Graphviz DOT.
#include "dot.h"

#include <sstream>
#include <unordered_map>

#include "atomic_file.h"

namespace ng {

std::vector<std::shared_ptr<Node>> graph_nodes(const Tensor& t) {
  std::vector<std::shared_ptr<Node>> found;
  if (!t.requires_grad()) return found;
  std::unordered_map<const Node*, bool> seen;
  std::vector<std::shared_ptr<Node>> stack{gradient_edge(t)};  // iterative: graphs can be very deep
  while (!stack.empty()) {
    std::shared_ptr<Node> node = std::move(stack.back());
    stack.pop_back();
    if (seen[node.get()]) continue;
    seen[node.get()] = true;
    found.push_back(node);
    for (auto edge = node->next.rbegin(); edge != node->next.rend(); ++edge)  // reversed: input 0 is visited first
      if (*edge && !seen[edge->get()]) stack.push_back(*edge);
  }
  return found;
}

namespace {

// Text inside a DOT string literal: backslashes and quotes escaped.
std::string escaped(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

// A DOT string literal of two lines ("\n" is DOT's centered line break).
std::string two_line_label(const std::string& first, const std::string& second) {
  std::string label = "\"";
  label += escaped(first);
  label += "\\n";
  label += escaped(second);
  return label + "\"";
}

// An op node shows its op, a leaf its name: "mul\n[4, 3]", "weight\n[3]".
std::string label_of(const Node& node) {
  const TensorImpl* leaf = node.leaf();
  const std::string title = !leaf ? std::string(node.op) : leaf->name.empty() ? "leaf" : leaf->name;
  return two_line_label(title, shape_str(node.shape));
}

}  // namespace

std::string to_dot(const Tensor& t) {
  std::ostringstream dot;
  dot << "digraph autograd {\n"
      << "  rankdir=BT;\n"  // inputs at the bottom, the output on top, as the data flows
      << "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\", fontsize=11];\n";
  const auto nodes = graph_nodes(t);
  if (nodes.empty()) dot << "  tensor [label=" << two_line_label("no graph", shape_str(t.shape())) << "];\n";
  std::unordered_map<const Node*, std::size_t> id;
  for (std::size_t k = 0; k < nodes.size(); ++k) id[nodes[k].get()] = k;
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    const Node& node = *nodes[k];
    dot << "  n" << k << " [label=" << label_of(node);
    if (node.leaf()) dot << ", fillcolor=lightblue";
    if (k == 0) dot << ", penwidth=2";  // the tensor that was drawn
    dot << "];\n";
  }
  for (std::size_t k = 0; k < nodes.size(); ++k)
    for (const auto& input : nodes[k]->next)
      if (input) dot << "  n" << id.at(input.get()) << " -> n" << k << ";\n";
  dot << "}\n";
  return dot.str();
}

void write_dot(const Tensor& t, const std::string& path) { write_file_atomically(path, to_dot(t), "write_dot"); }

}  // namespace ng
