// Validates Dashboard Studio definitions (dashboards/*.json) with Splunk's own schema and
// validator: the dashboard schema, then the same schema with every chart type's option schema.
// Exit status 1 when any definition is invalid.
'use strict';
const fs = require('fs');
const path = require('path');
const definition = require('@splunk/dashboard-definition');
const { DashboardValidator } = require('@splunk/dashboard-validation');
const charts = require('@splunk/visualization-schemas');

const optionSchemas = {
  'splunk.area': charts.areaOptionsSchema,
  'splunk.bar': charts.barOptionsSchema,
  'splunk.column': charts.columnOptionsSchema,
  'splunk.line': charts.lineOptionsSchema,
  'splunk.markdown': charts.markdownOptionsSchema,
  'splunk.pie': charts.pieOptionsSchema,
  'splunk.singlevalue': charts.singleValueOptionsSchema,
  'splunk.table': charts.tableOptionsSchema,
};
const withOptions = definition.createSchemaBasedOnDicts({ visualizationDict: optionSchemas });
withOptions.$id = 'urn:iot-defender-splunk:dashboard-with-chart-options';
const schemas = [['dashboard schema', definition.defaultSchema], ['with chart options', withOptions]];

function problems(dashboard) {
  const found = [];
  for (const [label, schema] of schemas) {
    const validator = new DashboardValidator();
    const error = validator.setSchema(schema);
    if (error) throw new Error(`cannot load the ${label}: ${JSON.stringify(error)}`);
    for (const issue of validator.validate(dashboard, []) || []) found.push(`${label}: ${JSON.stringify(issue)}`);
  }
  for (const [id, viz] of Object.entries(dashboard.visualizations || {})) {
    if (!(viz.type in optionSchemas)) found.push(`${id}: no option schema for ${viz.type}`);
  }
  return found;
}

let invalid = 0;
for (const file of process.argv.slice(2)) {
  const found = problems(JSON.parse(fs.readFileSync(file, 'utf8')));
  console.log(`${path.basename(file)}: ${found.length ? 'INVALID' : 'valid'}`);
  for (const line of found) console.log(`  ${line}`);
  invalid += found.length ? 1 : 0;
}
process.exit(invalid ? 1 : 0);
