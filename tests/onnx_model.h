// An ONNX model built in memory with the protobuf-c structs (no Python):
// graph inputs and outputs, nodes with typed attributes, initializers and
// metadata, packed to bytes for cbinfer_network_load_memory(). Shared by the
// loader and policy suites.
#ifndef CBI_TEST_ONNX_MODEL_H
#define CBI_TEST_ONNX_MODEL_H

#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "onnx.pb-c.h"

namespace cbi_test {

// Owns every C struct, array and string of a model under construction.
class Arena {
public:
    void *raw(size_t bytes)
    {
        blocks_.emplace_back(new unsigned char[bytes ? bytes : 1]());
        return blocks_.back().get();
    }
    template <class T> T *make(const T &init)
    {
        T *p = static_cast<T *>(raw(sizeof(T)));
        std::memcpy(static_cast<void *>(p), &init, sizeof(T));
        return p;
    }
    template <class T> T *copy(const std::vector<T> &v)
    {
        T *p = static_cast<T *>(raw(sizeof(T) * v.size()));
        if (!v.empty()) std::memcpy(static_cast<void *>(p), v.data(), sizeof(T) * v.size());
        return p;
    }
    char *str(const std::string &s)
    {
        char *p = static_cast<char *>(raw(s.size() + 1));
        std::memcpy(p, s.c_str(), s.size() + 1);
        return p;
    }

private:
    std::vector<std::unique_ptr<unsigned char[]>> blocks_;
};

struct Node {
    Onnx__NodeProto *p;
    std::vector<Onnx__AttributeProto *> attrs;
};

// Dims for graph inputs: kSym is a dim_param, kUnset a dimension without value.
constexpr int64_t kSym = -1;
constexpr int64_t kUnset = -2;

class Model {
public:
    explicit Model(int64_t opset = 13)
    {
        Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
        Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
        model_ = a_.make(m);
        graph_ = a_.make(g);
        model_->has_ir_version = 1;
        model_->ir_version = 8;
        model_->producer_name = a_.str("cbinfer-tests");
        model_->graph = graph_;
        graph_->name = a_.str("test");
        Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;
        Onnx__OperatorSetIdProto *op = a_.make(o);
        op->domain = a_.str("");
        op->has_version = 1;
        op->version = opset;
        opsets_.push_back(op);
    }

    Node &node(const std::string &op, const std::string &name, const std::vector<std::string> &in,
               const std::vector<std::string> &out)
    {
        Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
        Onnx__NodeProto *n = a_.make(init);
        n->op_type = a_.str(op);
        if (!name.empty()) n->name = a_.str(name);
        std::vector<char *> i, o;
        for (auto &s : in) i.push_back(a_.str(s));
        for (auto &s : out) o.push_back(a_.str(s));
        n->n_input = i.size();
        n->input = a_.copy(i);
        n->n_output = o.size();
        n->output = a_.copy(o);
        nodes_.push_back(Node{n, {}});
        return nodes_.back();
    }

    void attr_i(Node &n, const std::string &name, int64_t v)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
        a->has_i = 1;
        a->i = v;
    }
    void attr_ints(Node &n, const std::string &name, const std::vector<int64_t> &v)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
        a->n_ints = v.size();
        a->ints = a_.copy(v);
    }
    void attr_f(Node &n, const std::string &name, float v)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
        a->has_f = 1;
        a->f = v;
    }
    void attr_floats(Node &n, const std::string &name, const std::vector<float> &v)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
        a->n_floats = v.size();
        a->floats = a_.copy(v);
    }
    void attr_s(Node &n, const std::string &name, const std::string &v)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
        a->has_s = 1;
        a->s.len = v.size();
        a->s.data = reinterpret_cast<uint8_t *>(a_.str(v));
    }
    // An attribute with its type set and no value, as writers through
    // onnx.proto3 store a default (0) value.
    void attr_typed_empty(Node &n, const std::string &name, Onnx__AttributeProto__AttributeType type)
    {
        attr(n, name, type);
    }
    void attr_t(Node &n, const std::string &name, Onnx__TensorProto *t)
    {
        Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
        a->t = t;
    }

    // A tensor not yet listed as an initializer (for Constant nodes).
    Onnx__TensorProto *tensor(const std::string &name, const std::vector<int64_t> &dims,
                              int32_t type)
    {
        Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
        Onnx__TensorProto *t = a_.make(init);
        t->name = a_.str(name);
        t->n_dims = dims.size();
        t->dims = a_.copy(dims);
        t->has_data_type = 1;
        t->data_type = type;
        return t;
    }
    Onnx__TensorProto *init(Onnx__TensorProto *t)
    {
        inits_.push_back(t);
        return t;
    }
    Onnx__TensorProto *init_f(const std::string &name, const std::vector<int64_t> &dims,
                              const std::vector<float> &v)
    {
        Onnx__TensorProto *t = tensor(name, dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        t->n_float_data = v.size();
        t->float_data = a_.copy(v);
        return init(t);
    }
    Onnx__TensorProto *init_raw(const std::string &name, const std::vector<int64_t> &dims,
                                int32_t type, const void *bytes, size_t len)
    {
        Onnx__TensorProto *t = tensor(name, dims, type);
        t->has_raw_data = 1;
        t->raw_data.len = len;
        t->raw_data.data = static_cast<uint8_t *>(a_.raw(len));
        std::memcpy(t->raw_data.data, bytes, len);
        return init(t);
    }
    Onnx__TensorProto *init_raw_f(const std::string &name, const std::vector<int64_t> &dims,
                                  const std::vector<float> &v)
    {
        return init_raw(name, dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, v.data(),
                        v.size() * sizeof(float));
    }
    Onnx__TensorProto *init_i64(const std::string &name, const std::vector<int64_t> &dims,
                                const std::vector<int64_t> &v)
    {
        Onnx__TensorProto *t = tensor(name, dims, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        t->n_int64_data = v.size();
        t->int64_data = a_.copy(v);
        return init(t);
    }

    void input(const std::string &name, const std::vector<int64_t> &dims)
    {
        Onnx__TensorShapeProto sh = ONNX__TENSOR_SHAPE_PROTO__INIT;
        Onnx__TensorShapeProto *shape = a_.make(sh);
        std::vector<Onnx__TensorShapeProto__Dimension *> ds;
        for (int64_t d : dims) {
            Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
            Onnx__TensorShapeProto__Dimension *dim = a_.make(di);
            if (d == kSym) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                dim->dim_param = a_.str("sym");
            } else if (d != kUnset) {
                dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                dim->dim_value = d;
            }
            ds.push_back(dim);
        }
        shape->n_dim = ds.size();
        shape->dim = a_.copy(ds);
        Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
        Onnx__TypeProto__Tensor *tensor_type = a_.make(tt);
        tensor_type->has_elem_type = 1;
        tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        tensor_type->shape = shape;
        Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
        Onnx__TypeProto *type = a_.make(tp);
        type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        type->tensor_type = tensor_type;
        inputs_.push_back(value_info(name, type));
    }
    void output(const std::string &name) { outputs_.push_back(value_info(name, nullptr)); }

    void meta(const std::string &key, const std::string &value)
    {
        Onnx__StringStringEntryProto e = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
        Onnx__StringStringEntryProto *p = a_.make(e);
        p->key = a_.str(key);
        p->value = a_.str(value);
        meta_.push_back(p);
    }

    std::vector<uint8_t> bytes()
    {
        std::vector<Onnx__NodeProto *> ns;
        for (Node &n : nodes_) {
            n.p->n_attribute = n.attrs.size();
            n.p->attribute = a_.copy(n.attrs);
            ns.push_back(n.p);
        }
        graph_->n_node = ns.size();
        graph_->node = a_.copy(ns);
        graph_->n_initializer = inits_.size();
        graph_->initializer = a_.copy(inits_);
        graph_->n_input = inputs_.size();
        graph_->input = a_.copy(inputs_);
        graph_->n_output = outputs_.size();
        graph_->output = a_.copy(outputs_);
        model_->n_opset_import = opsets_.size();
        model_->opset_import = a_.copy(opsets_);
        model_->n_metadata_props = meta_.size();
        model_->metadata_props = a_.copy(meta_);
        std::vector<uint8_t> out(onnx__model_proto__get_packed_size(model_));
        onnx__model_proto__pack(model_, out.data());
        return out;
    }

    Onnx__ModelProto *proto() { return model_; }

private:
    Onnx__AttributeProto *attr(Node &n, const std::string &name,
                               Onnx__AttributeProto__AttributeType type)
    {
        Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
        Onnx__AttributeProto *a = a_.make(init);
        a->name = a_.str(name);
        a->has_type = 1;
        a->type = type;
        n.attrs.push_back(a);
        return a;
    }
    Onnx__ValueInfoProto *value_info(const std::string &name, Onnx__TypeProto *type)
    {
        Onnx__ValueInfoProto init = ONNX__VALUE_INFO_PROTO__INIT;
        Onnx__ValueInfoProto *v = a_.make(init);
        v->name = a_.str(name);
        v->type = type;
        return v;
    }

    Arena a_;
    Onnx__ModelProto *model_;
    Onnx__GraphProto *graph_;
    std::deque<Node> nodes_;
    std::vector<Onnx__TensorProto *> inits_;
    std::vector<Onnx__ValueInfoProto *> inputs_, outputs_;
    std::vector<Onnx__StringStringEntryProto *> meta_;
    std::vector<Onnx__OperatorSetIdProto *> opsets_;
};

} // namespace cbi_test

#endif
