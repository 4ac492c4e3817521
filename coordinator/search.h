// coordinator/search.h: SageMaker's Search action over the resources hpo keeps (TrainingJob,
// HyperParameterTuningJob): a SearchExpression parsed and checked once, then matched against each
// resource's document (the JSON Search returns for it: DescribeTrainingJob's fields and Tags, or
// DescribeHyperParameterTuningJob's), and the value a resource sorts by.
//
// Property names, as SageMaker's Filter documents them:
//   Metrics.NAME          a training job's final value of metric NAME (FinalMetricDataList): a number.
//   HyperParameters.NAME  a hyperparameter (its text). Compared as a number when the filter's Value
//                         is a decimal and the hyperparameter reads as one; as an integer (the
//                         hyperparameter truncated toward zero) when the Value is an integer.
//   Tags.KEY              the value of tag KEY: text.
//   A.B.C                 a path into the document. A must be one of the resource's members
//                         (TrainingJobName, ResourceConfig, InputDataConfig, ...); through a list,
//                         every element is reached (InputDataConfig.ChannelName is each channel's).
// Kinds: a JSON number is numeric, and a timestamp when its name ends in Time or Timestamp
// (CreationTime, SecondaryStatusTransitions.StartTime): its Value is then an ISO 8601 date-time
// (2026-12-06T10:00:00, optionally with fractions and Z or an offset; UTC without). Strings are
// text, true and false Boolean ("true"/"false").
// Operators: Equals (the default when only a Value is given), NotEquals, GreaterThan[OrEqualTo],
// LessThan[OrEqualTo] (numbers and timestamps only), Contains and In (text only: In takes a comma-
// separated list), Exists, NotExists (and a filter with neither Operator nor Value). Text compares
// case-sensitively. Through a list, a filter holds when one element's value does; NotEquals and
// NotExists when none does. A missing property satisfies only NotEquals and NotExists.
// NestedFilters {NestedPropertyName: InputDataConfig, Filters: [...]} holds when one element of
// that list satisfies all its filters (each named InputDataConfig.SOMETHING).
// SubExpressions nest; Operator And (the default) or Or joins a level's filters, nested filters and
// subexpressions.
//
// Parse refuses, with InvalidArgument naming the element (SearchExpression.Filters[2].Value ...):
// an unknown member or property, an operator of the wrong kind for a property whose kind is known
// (GreaterThan on TrainingJobStatus, Contains on Metrics.loss), a Value that is not of its
// property's kind, more than 20 elements in a list, more than 50 in all (SageMaker's limits),
// an empty expression, and more than one Contains. It changes nothing. Thread-safe once parsed.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hpo::coordinator {

enum class SearchResource { kTrainingJob, kHyperParameterTuningJob };

// "TrainingJob" or "HyperParameterTuningJob"; InvalidArgument for any other of SageMaker's resource
// types (hpo keeps none of them) or a name that is none.
Result<SearchResource> ParseSearchResource(std::string_view name);
// The member of a SearchRecord that holds the resource ("TrainingJob", "HyperParameterTuningJob").
const char* SearchRecordMember(SearchResource r);
// The members of a resource's document, in the order of SageMaker's shape: what a SearchRecord
// holds (a document's other fields are left out of it).
const std::vector<std::string>& SearchResourceMembers(SearchResource r);

// A value a resource sorts by: numbers and timestamps by number (and a hyperparameter that reads
// as a number), text and Booleans by text; a resource without the property sorts after every
// other in either order.
struct SearchSortValue {
  bool present = false;
  double number = 0;
  std::string text;
};

// A property name (Metrics.NAME, HyperParameters.NAME, Tags.KEY or a path) parsed once, checked as
// SearchExpression::Parse checks filters' names: SortBy's, and hpo search's table columns.
class SearchProperty {
 public:
  // InvalidArgument, prefixed with `where` ("SortBy"), for a property resource `r` lacks.
  static Result<SearchProperty> Parse(std::string_view name, SearchResource r, const std::string& where);
  // Every value it reaches in `doc` (several through lists), nulls left out.
  std::vector<const nlohmann::ordered_json*> Values(const nlohmann::ordered_json& doc) const;
  // The value `doc` sorts by (the first, when a list holds several).
  SearchSortValue SortValue(const nlohmann::ordered_json& doc) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

class SearchExpression {
 public:
  // `expression` is the request's SearchExpression (an object); messages name the element
  // ("SearchExpression.SubExpressions[1].Filters[0].Value ...").
  static Result<SearchExpression> Parse(const nlohmann::ordered_json& expression, SearchResource r);
  SearchExpression(SearchExpression&&) noexcept;
  SearchExpression& operator=(SearchExpression&&) noexcept;
  ~SearchExpression();

  bool Matches(const nlohmann::ordered_json& doc) const;

  struct Node;  // the parsed expression (search.cc)

 private:
  SearchExpression();
  std::unique_ptr<Node> root_;
};

}  // namespace hpo::coordinator
