# Chart of `make bench`: req/s per client, one horizontal bar each.
# gnuplot -e "datafile='...'; outfile='...'; charttitle='...'" bench/throughput.gp
# datafile rows: "label" req/s group (1 = gigstack-lua, 2 = peer or floor program)
set terminal pngcairo size 1100,620 font "sans,10"
set output outfile
set title charttitle noenhanced
stats datafile using 2 nooutput
set yrange [STATS_records - 0.4 : -0.6]
set xrange [0 : STATS_max * 1.15]
set xlabel "requests per second (higher is better)"
set ytics nomirror noenhanced
set xtics nomirror
set grid xtics
set style fill solid 0.85 border -1
set linetype 1 lc rgb "#2f6fc7"
set linetype 2 lc rgb "#9a9a9a"
unset key
plot datafile using (0.5 * $2):0:(0.5 * $2):(0.35):3:yticlabels(1) with boxxyerror lc variable, \
     '' using 2:0:(sprintf(" %.0f", $2)) with labels left noenhanced
