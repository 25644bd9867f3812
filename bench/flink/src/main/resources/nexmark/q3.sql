-- q3, local item suggestion: auctions of category 10 whose seller lives in
-- Oregon, Idaho or California (a regular, unbounded join).
SELECT P.name, P.city, P.state, A.id
FROM auction AS A
JOIN person AS P ON A.seller = P.id
WHERE A.category = 10
  AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
