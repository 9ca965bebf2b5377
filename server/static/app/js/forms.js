// Checks built from the form definitions the server serves (GET /api/v1/forms, built from
// forms/definitions.py): the fields, their types and limits, and the checks across fields.
// Nothing about a field is typed here by hand. An error is {code, params}; i18n.js says it
// in the doctor's language, next to the field.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)$/;
const DATE = /^\d{4}-\d\d-\d\d$/;

function empty(value) {
  return value === undefined || value === null || value === '';
}

function checkField(def, value) {
  if (empty(value)) {
    if (def.required && !(def.allow_none && value === null)) return { code: 'required' };
    return null;
  }
  switch (def.type) {
    case 'id':
      if (typeof value !== 'string' || !ID_PATTERN.test(value)) return { code: 'id' };
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return { code: 'integer' };
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return { code: 'number' };
      break;
    case 'datetime':
      if (typeof value !== 'string' || !DATETIME.test(value) || Number.isNaN(Date.parse(value))) return { code: 'datetime' };
      break;
    case 'date':
      if (typeof value !== 'string' || !DATE.test(value) || Number.isNaN(Date.parse(value))) return { code: 'date' };
      break;
    case 'choice':
      if (!def.choices.includes(value)) return { code: 'choice', params: { choices: def.choices.join(', ') } };
      break;
    case 'text':
      if (typeof value !== 'string') return { code: 'text' };
      if (def.max_length !== null && value.length > def.max_length) return { code: 'max_length', params: { max: def.max_length } };
      break;
    default:
      break;
  }
  if (typeof value === 'number') {
    if (def.minimum !== null && value < def.minimum) return { code: 'minimum', params: { min: def.minimum } };
    if (def.maximum !== null && value > def.maximum) return { code: 'maximum', params: { max: def.maximum } };
  }
  return null;
}

function checkAcross(check, values, now) {
  const value = values[check.field];
  const other = values[check.other];
  if (empty(value) || (check.other && empty(other))) return null;
  switch (check.check) {
    case 'after':
      return Date.parse(value) <= Date.parse(other) ? { code: 'after', params: { other: check.other } } : null;
    case 'max_hours':
      return Date.parse(value) - Date.parse(other) > check.hours * 3600000 ? { code: 'max_hours', params: { hours: check.hours } } : null;
    case 'not_future':
      return Date.parse(value) - now > check.hours * 3600000 ? { code: 'future' } : null;
    case 'not_before':
      return value < other ? { code: 'not_before', params: { other: check.other } } : null;
    default:
      return null;
  }
}

/** {field: {code, params}} for a record against its form; {} when it is valid. */
export function validate(form, values, { now = Date.now() } = {}) {
  const errors = {};
  for (const def of form.fields) {
    const error = checkField(def, values[def.name]);
    if (error) errors[def.name] = error;
  }
  for (const check of form.checks || []) {
    if (errors[check.field]) continue;
    const error = checkAcross(check, values, now);
    if (error) errors[check.field] = error;
  }
  return errors;
}

/** The field definition of a form by name (labels, limits for the input). */
export function field(form, name) {
  return form.fields.find((f) => f.name === name) || null;
}
