-- desired
-- params: [0.4, "north", "^[a-z.]+[0-9]*@example\\.com$", "north", "south", "high-spend", "example-mail"]
CREATE TEMPORARY TABLE "reconcile_desired" AS
SELECT DISTINCT
  customer_id,
  segment_id
FROM (
  SELECT
    f.customer_id,
    g.segment_id
  FROM (
    SELECT
      CAST("customer_id" AS VARCHAR) AS customer_id,
      (
        COALESCE("share" >= ?, FALSE) AND NOT (
          NOT COALESCE("region" = ?, FALSE)
        )
      ) AS s0,
      (
        COALESCE(REGEXP_INSTR("email", ?) > 0, FALSE)
        AND COALESCE("region" IN (?, ?), FALSE)
      ) AS s1
    FROM "shop"."customers"
    WHERE
      NOT "customer_id" IS NULL
  ) AS f
  CROSS JOIN (
    SELECT
      0 AS i,
      CAST(? AS VARCHAR) AS segment_id
    UNION ALL
    SELECT
      1 AS i,
      CAST(? AS VARCHAR) AS segment_id
  ) AS g
  WHERE
    CASE g.i WHEN 0 THEN f.s0 WHEN 1 THEN f.s1 ELSE FALSE END
) AS m;
-- counts
-- params: []
SELECT
  (
    SELECT
      COUNT(*)
    FROM "reconcile_desired"
  ) AS desired,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM "shop"."snapshot_epsilon"
    )
  ) AS snapshot,
  (
    SELECT
      COUNT(*)
    FROM "reconcile_desired" AS d
    INNER JOIN (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM "shop"."snapshot_epsilon"
    ) AS s
      ON d.customer_id = s.customer_id AND d.segment_id = s.segment_id
  ) AS kept,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT
        l.customer_id,
        l.segment_id,
        'add' AS op
      FROM "reconcile_desired" AS l
      WHERE
        NOT EXISTS(
          SELECT
            1
          FROM (
            SELECT DISTINCT
              customer_id,
              segment_id
            FROM "shop"."snapshot_epsilon"
          ) AS r
          WHERE
            r.customer_id = l.customer_id AND r.segment_id = l.segment_id
        )
    ) AS a
  ) AS adds,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT
        l.customer_id,
        l.segment_id,
        'remove' AS op
      FROM (
        SELECT DISTINCT
          customer_id,
          segment_id
        FROM "shop"."snapshot_epsilon"
      ) AS l
      WHERE
        NOT EXISTS(
          SELECT
            1
          FROM "reconcile_desired" AS r
          WHERE
            r.customer_id = l.customer_id AND r.segment_id = l.segment_id
        )
    ) AS x
  ) AS removes;
-- adds
-- params: []
SELECT
  l.customer_id,
  l.segment_id,
  'add' AS op
FROM "reconcile_desired" AS l
WHERE
  NOT EXISTS(
    SELECT
      1
    FROM (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM "shop"."snapshot_epsilon"
    ) AS r
    WHERE
      r.customer_id = l.customer_id AND r.segment_id = l.segment_id
  );
-- removes
-- params: []
SELECT
  l.customer_id,
  l.segment_id,
  'remove' AS op
FROM (
  SELECT DISTINCT
    customer_id,
    segment_id
  FROM "shop"."snapshot_epsilon"
) AS l
WHERE
  NOT EXISTS(
    SELECT
      1
    FROM "reconcile_desired" AS r
    WHERE
      r.customer_id = l.customer_id AND r.segment_id = l.segment_id
  );
