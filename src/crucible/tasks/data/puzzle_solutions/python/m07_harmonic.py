print(f"{sum(1 / k for k in range(1, 1001)):.10f}")
