# mgwr 2.2.1, spherical=True on Georgia's lon/lat (tests/data/georgia/GData_utm.csv)
import sys, numpy as np, pandas as pd
from mgwr.gwr import GWR
from mgwr.sel_bw import Sel_BW
d = pd.read_csv(sys.argv[1])
coords = list(zip(d.Longitud, d.Latitude))
y = d.PctBach.values.reshape(-1, 1)
X = d[["PctRural", "PctPov", "PctBlack"]].values
bw = Sel_BW(coords, y, X, kernel="bisquare", fixed=False, spherical=True).search(criterion="AICc")
r = GWR(coords, y, X, bw, kernel="bisquare", fixed=False, spherical=True).fit()
print("bw", bw, "aicc", repr(r.aicc), "r2", repr(r.R2), "trS", repr(r.tr_S))
for i in (0, 1, 50, 158):
    print(i, [repr(v) for v in r.params[i]], [repr(v) for v in r.bse[i]])
r90 = GWR(coords, y, X, 90, kernel="bisquare", fixed=False, spherical=True).fit()
print("bw90 aicc", repr(r90.aicc), "r2", repr(r90.R2))
print(0, [repr(v) for v in r90.params[0]])
