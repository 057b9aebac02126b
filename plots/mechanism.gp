# mechanism.gp: where attention goes, next to what it achieves, vs evaluation length for one
# task, one line per method (means over seeds): exact match; the relevant-key mass (attention
# weight on the positions that hold the answer, at the supervised steps that have them: the
# best head of the best layer, solid with bars over seeds; the mean over heads, dashed); and the
# collapse (mean cosine similarity of different samples' final-layer representations at their
# last answer row). The paper's story: softmax's mass decays with length (dispersion) and its
# representations converge (collapse) while ASEntmax keeps both.
# Input: a `lcgbench table --format dat` file (columns 11-14). Writes <out>.png and <out>.svg.
#   gnuplot -e "data='build/report/plots/recall.dat'; out='build/report/figures/recall-mechanism'; task='recall'" plots/mechanism.gp
if (!exists("data") || !exists("out")) { print "mechanism.gp: set data and out (see the header)"; exit status 2 }
if (!exists("task")) task = ""
stats data using 1 nooutput
nb = STATS_blocks
set logscale x 2
set format x "%g×"
set grid
set style data linespoints
set pointsize 0.7
do for [t in "pngcairo svg"] {
  if (t eq "svg") { set terminal svg size 1200,420 dynamic font "Sans,12"; set output out.".svg" } \
  else { set terminal pngcairo size 1200,420 font "Sans,10"; set output out.".png" }
  set multiplot layout 1,3 title sprintf("%s: accuracy and where attention goes vs length", task)
  set xlabel "length / training length"
  set key bottom left noenhanced
  set title "exact match (%)"
  set yrange [0:102]
  plot for [i=0:nb-1] data index i using 1:3 title columnheader(1) lw 2 lc i+1
  set title "relevant-key mass (best head; dashed: mean over heads)"
  set logscale y 10
  set yrange [1e-4:1.2]
  set format y "%g"
  set key off
  plot for [i=0:nb-1] data index i using 1:11:($11 - $12 > 1e-4 ? $11 - $12 : 1e-4):($11 + $12) with yerrorlines lw 2 lc i+1 notitle, \
       for [i=0:nb-1] data index i using 1:13 with lines dt 2 lw 1.5 lc i+1 notitle
  unset logscale y
  set format y "%g"
  set title "collapse (mean cosine similarity across samples)"
  set yrange [-0.05:1.02]
  plot for [i=0:nb-1] data index i using 1:14 lw 2 lc i+1 notitle
  set autoscale y
  unset multiplot
  set output
}
