// The timeline's filters and its days as written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listQuery, nextDay, dayOf, groupByDay, kindText, negationText, sources } from '../assets/js/timeline.mjs';
import { S } from '../assets/js/strings.mjs';

test('filters as the listing query', () => {
  assert.equal(listQuery({ types: ['vital', 'dose', 'nonsense'], since: '2026-11-01', until: '2026-11-30', source: 'self', q: 'head' }),
    'type=vital%2Cdose&since=2026-11-01&until=2026-12-01&source=self&q=head&limit=50');
  assert.equal(listQuery({}, 'NTA'), 'limit=50&cursor=NTA');
  assert.equal(listQuery({ since: 'last week', until: '2026-02-30' }), 'limit=50');
  assert.equal(nextDay('2026-12-31'), '2027-01-01');
  assert.equal(nextDay('2028-02-28'), '2028-02-29');
});

test('records grouped by the day their source wrote', () => {
  const items = [
    { id: 'a', date: '2026-11-24T08:05:00+00:00' },
    { id: 'b', date: '2026-11-24' },
    { id: 'c', date: '2026-11-23T23:30:00-05:00' }, // 24 Nov in UTC: still the 23rd as written
    { id: 'd', date: '2019-03' },
    { id: 'e', date: '' },
  ];
  const g = groupByDay(items);
  assert.deepEqual(g.map((x) => [x.day, x.label, x.items.map((i) => i.id).join('')]), [
    ['2026-11-24', '24 Nov 2026', 'ab'],
    ['2026-11-23', '23 Nov 2026', 'c'],
    ['2019-03', 'Mar 2019', 'd'],
    ['', S.records.noDate, 'e'],
  ]);
  assert.equal(dayOf('nonsense'), '');
});

test('kinds, negations and sources in words', () => {
  assert.equal(kindText('dose'), S.kinds.dose);
  assert.equal(kindText('spaceship'), S.kinds.other);
  assert.equal(negationText('not-taken'), 'Not taken');
  assert.equal(negationText('refuted'), 'Ruled out');
  assert.equal(negationText(''), '');
  assert.deepEqual(sources([{ source: 'self' }, { source: 'ccda' }, { source: 'self' }, {}]), ['ccda', 'self']);
});
