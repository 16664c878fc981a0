// ECharts for the console's 统计 page (/console/static/build/charts.js): only the chart types and
// components the page draws, so the bundle stays small. Built by build.mjs beside the designer.
import * as echarts from "echarts/core";
import { BarChart, LineChart, PieChart } from "echarts/charts";
import { DatasetComponent, GridComponent, LegendComponent, TitleComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, LineChart, PieChart, DatasetComponent, GridComponent, LegendComponent, TitleComponent,
  TooltipComponent, CanvasRenderer]);

export const { init, dispose, getInstanceByDom } = echarts;
