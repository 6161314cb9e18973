import heapq

n, x, grid = 200, 1, []
for _ in range(n):
    row = []
    for _ in range(n):
        x = (1103515245 * x + 12345) % 2 ** 31
        row.append(x % 100 + 1)
    grid.append(row)
dist = [[float("inf")] * n for _ in range(n)]
dist[0][0] = grid[0][0]
heap = [(grid[0][0], 0, 0)]
while heap:
    d, r, c = heapq.heappop(heap)
    if d > dist[r][c]:
        continue
    for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
        if 0 <= nr < n and 0 <= nc < n and d + grid[nr][nc] < dist[nr][nc]:
            dist[nr][nc] = d + grid[nr][nc]
            heapq.heappush(heap, (dist[nr][nc], nr, nc))
print(dist[n - 1][n - 1])
