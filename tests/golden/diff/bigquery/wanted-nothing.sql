-- params: []
CREATE OR REPLACE TEMPORARY TABLE RECONCILE_WANTED AS
SELECT
  cid,
  STRING_AGG(seg, CODE_POINTS_TO_STRING([31])
  ORDER BY
    seg) AS want
FROM (
  SELECT
    cid,
    seg
  FROM (
    (
      SELECT
        CAST(NULL AS STRING) AS cid,
        CAST(NULL AS STRING) AS seg,
        0 AS x
      FROM (
        SELECT
          1 AS one
      ) AS e
      WHERE
        1 = 0
    )
  ) AS c
  GROUP BY
    cid,
    seg
  HAVING
    MAX(x) = 0
) AS p
GROUP BY
  cid
