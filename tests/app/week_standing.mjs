// Reads [{plan, visits, today, doctor}] as JSON on stdin and writes the standings week.js
// gives: tests/app/test_week_plan.py compares them with rules/ itself.
import { standing } from '../../server/static/app/js/week.js';

let text = '';
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(text);
  process.stdout.write(JSON.stringify(cases.map((c) => standing(c.plan, c.visits, c.today, c.doctor))));
});
